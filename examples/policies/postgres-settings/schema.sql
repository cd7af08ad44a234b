-- The tables the example policy reads, with the triggers that tell it about changes.
-- psql -d <your database> -f schema.sql

-- Settings of each application, one row per key; the value is JSON.
CREATE TABLE settings (
  app   text  NOT NULL,
  key   text  NOT NULL,
  value jsonb NOT NULL,
  PRIMARY KEY (app, key)
);

-- Feature flags shared by every application, one row per flag.
CREATE TABLE feature_flags (
  name       text        PRIMARY KEY,
  enabled    boolean     NOT NULL DEFAULT false,
  rollout    numeric(5,2) NOT NULL DEFAULT 0,
  expires_at timestamptz,
  note       text
);

-- Any change notifies the channel the policy LISTENs on. The notification is sent when
-- the transaction commits; several changes in one transaction are one re-read.
CREATE FUNCTION notify_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('config_changed', TG_TABLE_NAME);
  RETURN NULL;
END $$;
CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON settings
  FOR EACH STATEMENT EXECUTE FUNCTION notify_config();
CREATE TRIGGER flags_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feature_flags
  FOR EACH STATEMENT EXECUTE FUNCTION notify_config();

INSERT INTO settings VALUES
  ('billing', 'invoice', '{"max_lines": 500, "currency": "EUR"}'),
  ('billing', 'retry', '{"attempts": 3, "delay": "30s"}'),
  ('search', 'index', '{"shards": 4}');
INSERT INTO feature_flags VALUES
  ('new-checkout', true, 25, '2030-01-01 00:00:00+00', 'ramping up'),
  ('dark-mode', false, 0, NULL, NULL);
