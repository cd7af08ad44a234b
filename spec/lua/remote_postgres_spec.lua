-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.postgres against a real PostgreSQL 15 (Debian postgresql, spec/lua/postgres.lua:
-- started here in a temporary directory on a unix socket, stopped in teardown): key/value
-- and row results with their types, insert/update/delete through a trigger that
-- notifies, coalesced notifications, a query error and a statement timeout, a result
-- over max_bytes, the server restarted mid-watch (and coming back empty), a wrong
-- password. Each fault checks the last good value is kept, an error event, and recovery.
local H = require "spec.lua.helpers"
local P = require "spec.lua.postgres"
local rc = require "reactcfg"

local SCHEMA = [[
CREATE TABLE settings (app text NOT NULL, key text NOT NULL, value jsonb,
                       PRIMARY KEY (app, key));
CREATE TABLE raw (app text NOT NULL, key text NOT NULL, value text);
CREATE TABLE slow (on_ boolean);
CREATE FUNCTION notify_settings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('settings_changed', COALESCE(NEW.app, OLD.app));
  RETURN NULL;
END $$;
CREATE TRIGGER settings_notify AFTER INSERT OR UPDATE OR DELETE ON settings
  FOR EACH ROW EXECUTE FUNCTION notify_settings();
CREATE TRIGGER raw_notify AFTER INSERT OR UPDATE OR DELETE ON raw
  FOR EACH ROW EXECUTE FUNCTION notify_settings();
CREATE FUNCTION notify_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('settings_changed', 'slow');
  RETURN NULL;
END $$;
CREATE TRIGGER slow_notify AFTER INSERT OR UPDATE OR DELETE ON slow
  FOR EACH STATEMENT EXECUTE FUNCTION notify_slow();
-- Sleeps while `slow` has a row: a query that outlives its statement timeout.
CREATE FUNCTION maybe_sleep() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM slow) THEN PERFORM pg_sleep(30); END IF;
  RETURN true;
END $$;
CREATE ROLE reader LOGIN PASSWORD 'R1ght-Pass-7';
GRANT SELECT ON settings TO reader;
]]

local policy = H.source_policy("cfg", "postgres")

local KV = "query = 'SELECT key, value FROM settings WHERE app = $1', "
  .. "params = { 'billing' }, listen = 'settings_changed'"
-- Quick retries, and no circuit breaker: a fault lasts for several retries here, and a
-- breaker opened by them would hold the recovery back for its cool-down (30 s).
local FAST = "backoff = { min = '50ms', max = '200ms' }, circuit = false"

-- Every commit's changes as sorted "kind path" strings.
local function changes(commits)
  local out = {}
  for _, cm in ipairs(commits) do
    out[#out + 1] = table.concat(H.change_strings(cm, true), ", ")
  end
  return out
end

-- Runs until `pred` holds (at most 10 s: a restarted server, a reconnect after backoff).
local function eventually(e, pred)
  return e:run_until(pred, "10s")
end

describe("rc.postgres", function()
  local srv
  setup(function()
    srv = P.new()
    srv:sql(SCHEMA)
  end)
  teardown(function() if srv then srv:close() end end)
  after_each(function()
    H.cleanup()
    srv:sql("DELETE FROM settings; DELETE FROM raw; DELETE FROM slow")
  end)

  it("checks its options at load time", function()
    local ci = ("conninfo = %q, "):format(srv:conninfo())
    for _, bad in ipairs {
      "query = 'SELECT 1'",                                       -- no connection
      ci .. "conninfo_env = 'X', query = 'SELECT 1'",              -- two of them
      ci,                                                           -- no query
      ci .. "query = 'SELECT 1', params = 'x'",
      ci .. "query = 'SELECT 1', params = { {} }",
      ci .. "query = 'SELECT 1', interval = '1ms'",
      ci .. "query = 'SELECT 1', listen = '" .. ("x"):rep(64) .. "'",
      "conninfo = 'host=/tmp password=hunter22', query = 'SELECT 1'",
      "conninfo = 'postgresql://u:hunter22@db/app', query = 'SELECT 1'",
    } do
      local err = H.load_error(policy(bad))
      assert.matches("postgres", err)
      assert.not_matches("hunter22", err)
    end
    assert.matches("unknown option 'token_env'",
      H.load_error(policy(ci .. "query = 'SELECT 1', token_env = 'T'")))
    assert.matches("holds a password",
      H.load_error(policy("conninfo = 'user=a password=hunter22', query = 'SELECT 1'")))
  end)

  it("reads key/value rows as a table and follows insert, update and delete by NOTIFY",
    function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'limits', '{"max": 10}'),
      ('billing', 'beta', 'true'), ('other', 'x', '1')]])
    -- interval = 1h: every change below can only come from a notification.
    local e = H.engine(policy(("conninfo = %q, %s, interval = '1h'")
      :format(srv:conninfo(), KV)))
    assert.truthy(e:run_until(function() return e:get("cfg.beta") == true end))
    assert.same({ limits = { max = 10 }, beta = true }, e:get("cfg"))
    e:run("100ms")
    e:commits()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'region', '"eu"')]])
    assert.same({ "added cfg.region" }, changes(H.commits(e, 1)))
    srv:sql([[UPDATE settings SET value = '{"max": 20}' WHERE key = 'limits']])
    assert.same({ "modified cfg.limits.max" }, changes(H.commits(e, 1)))
    srv:sql([[DELETE FROM settings WHERE key = 'beta']])
    assert.same({ "removed cfg.beta" }, changes(H.commits(e, 1)))
    -- Another app's row notifies too: the query runs, the value is the same, no commit.
    srv:sql([[UPDATE settings SET value = '2' WHERE app = 'other']])
    assert.same({}, changes(H.commits(e, 0)))
    assert.same({ limits = { max = 20 }, region = "eu" }, e:get("cfg"))
    assert.equal(0, #H.events(e, "source.error"))
    -- Each run of the query is in the fetch-duration histogram of its kind.
    assert.truthy(H.fetch_count(e, "postgres") >= 5)
  end)

  it("keeps column types in rows of any other shape", function()
    srv:sql([[
      CREATE TABLE items (id int, name text, enabled boolean, ratio numeric(5,2),
        big bigint, exact numeric, huge numeric, f float8, at timestamptz,
        local_at timestamp, day date, tags text[], grid int[], meta jsonb, note text);
      INSERT INTO items VALUES
        (1, 'one', true, 1.50, 9007199254740993, 42, 123456789012345678901234567890,
         0.1, '2024-01-02 03:04:05.25+02', '2024-01-02 03:04:05', '2024-01-02',
         '{a,"b c",NULL}', '{{1,2},{3,4}}', '{"k": [1, "x"]}', NULL),
        (2, 'two', false, 2, -1, 7.25, 0, -2.5e-3, NULL, NULL, 'infinity', '{}', NULL,
         'null', 'n');
    ]])
    local e = H.engine(policy(("conninfo = %q, query = 'SELECT * FROM items ORDER BY id'")
      :format(srv:conninfo())))
    assert.truthy(e:run_until(function() return e:get("cfg[1].name") == "two" end))
    local r = e:get("cfg[0]")
    assert.equal(1, r.id)
    assert.equal("integer", math.type(r.id))
    assert.equal(true, r.enabled)
    assert.equal("float", math.type(r.ratio))        -- numeric(5,2): always a float
    assert.equal(1.5, r.ratio)
    assert.equal(9007199254740993, r.big)            -- beyond a double, still exact
    assert.equal("integer", math.type(r.exact))      -- unconstrained, written whole
    assert.equal("float", math.type(r.huge))         -- beyond 64 bits: the nearest double
    assert.equal(0.1, r.f)
    assert.equal("2024-01-02T01:04:05.25Z", r.at)    -- a date-time, in UTC
    assert.equal("2024-01-02T03:04:05", r.local_at)
    assert.equal("2024-01-02", r.day)
    assert.same({ "a", "b c", rc.null }, r.tags)
    assert.same({ { 1, 2 }, { 3, 4 } }, r.grid)
    assert.same({ k = { 1, "x" } }, r.meta)
    assert.is_nil(r.note)                            -- NULL: absent
    local r2 = e:get("cfg[1]")
    assert.equal(false, r2.enabled)
    assert.equal("float", math.type(r2.ratio))
    assert.equal(2, r2.ratio)
    assert.equal(7.25, r2.exact)
    assert.equal("infinity", r2.day)                 -- no date-time for it: the text
    assert.same({}, r2.tags)
    assert.is_nil(r2.at)
    assert.equal(rc.null, r2.meta)                   -- JSON null is a value, not absent
    srv:sql("DROP TABLE items")
  end)

  it("runs the query once for a burst of notifications", function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'n', '0')]])
    local e = H.engine(policy(("conninfo = %q, query = '/* burst */ SELECT key, value "
      .. "FROM settings WHERE app = $1', params = { 'billing' }, listen = "
      .. "'settings_changed', interval = '1h'"):format(srv:conninfo())))
    assert.truthy(e:run_until(function() return e:get("cfg.n") == 0 end))
    e:run("100ms")
    e:commits()
    local before = srv:log_count("/* burst */")
    -- 200 different payloads in one transaction: the server sends 200 notifications.
    srv:sql([[BEGIN;
      SELECT pg_notify('settings_changed', g::text) FROM generate_series(1, 200) g;
      UPDATE settings SET value = '1' WHERE key = 'n';
      COMMIT;]])
    assert.same({ "modified cfg.n" }, changes(H.commits(e, 1)))
    local runs = srv:log_count("/* burst */") - before
    -- One run for what arrived together, and at most one more for any that came
    -- during it (and one more read boundary): not one per notification.
    assert.truthy(runs >= 1 and runs <= 3, "runs: " .. runs)
  end)

  it("reports a query error, keeps the last value, and recovers when it is fixed",
    function()
    srv:sql([[INSERT INTO raw VALUES ('billing', 'n', '1')]])
    local e = H.engine(policy(("conninfo = %q, query = 'SELECT key, value::jsonb AS value "
      .. "FROM raw WHERE app = $1', params = { 'billing' }, listen = 'settings_changed', "
      .. "interval = '1h', %s"):format(srv:conninfo(), FAST)))
    assert.truthy(e:run_until(function() return e:get("cfg.n") == 1 end))
    e:events()
    srv:sql([[UPDATE raw SET value = '{not json' WHERE key = 'n']])
    local err = H.wait_event(e, "source.error")
    assert.truthy(err)
    assert.matches("invalid input syntax for type json", err.message)
    assert.matches("SQLSTATE 22P02", err.message)
    e:run("300ms")
    assert.equal(1, e:get("cfg.n"))                   -- the last good value stays
    srv:sql([[UPDATE raw SET value = '2' WHERE key = 'n']])
    assert.truthy(eventually(e, function() return e:get("cfg.n") == 2 end))
    assert.truthy(#H.events(e, "source.recovered") >= 1)
  end)

  it("cancels a query that outlives its timeout (statement_timeout)", function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'n', '1')]])
    local e = H.engine(policy(("conninfo = %q, query = 'SELECT key, value FROM settings "
      .. "WHERE app = $1 AND (SELECT maybe_sleep())', params = { 'billing' }, "
      .. "listen = 'settings_changed', interval = '1h', timeout = '300ms', %s")
      :format(srv:conninfo(), FAST)))
    assert.truthy(e:run_until(function() return e:get("cfg.n") == 1 end))
    e:events()
    srv:sql("INSERT INTO slow VALUES (true)")          -- notifies: the next run sleeps
    local err = H.wait_event(e, "source.error")
    assert.truthy(err)
    assert.matches("statement timeout", err.message)
    assert.equal(1, e:get("cfg.n"))
    srv:sql("DELETE FROM slow; UPDATE settings SET value = '2'")
    assert.truthy(eventually(e, function() return e:get("cfg.n") == 2 end))
  end)

  it("refuses a result over max_bytes and keeps the last value", function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'n', '1')]])
    local e = H.engine(policy(("conninfo = %q, %s, interval = '1h', max_bytes = 200, "
      .. "limits = { max_depth = 4 }, %s"):format(srv:conninfo(), KV, FAST)))
    assert.truthy(e:run_until(function() return e:get("cfg.n") == 1 end))
    e:events()
    srv:sql(("INSERT INTO settings VALUES ('billing', 'big', '%q')"):format(("x"):rep(300)))
    local err = H.wait_event(e, "source.error")
    assert.matches("larger than max_bytes", err.message)
    assert.same({ n = 1 }, e:get("cfg"))
    -- Depth counts from the component: cfg.deep.a.b.c is 4 deep.
    srv:sql([[DELETE FROM settings WHERE key = 'big';
      INSERT INTO settings VALUES ('billing', 'deep', '{"a": {"b": {"c": {"d": 1}}}}')]])
    e:run("300ms")
    local errs = H.events(e, "source.error")
    assert.truthy(#errs >= 1)
    assert.matches("deeper than", errs[#errs].message)
    assert.same({ n = 1 }, e:get("cfg"))
    srv:sql([[UPDATE settings SET value = '{"a": 1}' WHERE key = 'deep']])
    assert.truthy(eventually(e, function() return e:get("cfg.deep.a") == 1 end))
  end)

  it("reconnects after the server restarts mid-watch and reads again what changed",
    function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'n', '1')]])
    local e = H.engine(policy(("conninfo = %q, %s, interval = '1h', %s")
      :format(srv:conninfo(), KV, FAST), ", default = { empty = true }"))
    assert.truthy(e:run_until(function() return e:get("cfg.n") == 1 end))
    e:events()
    -- Changed while the server is down, by the single-user backend: no client, no
    -- notification. Only the query after the reconnect can see it (interval is 1h).
    srv:single([[UPDATE settings SET value = '2' WHERE key = 'n']])
    -- While it is down: the connection is lost, then connecting fails (with backoff).
    local errs = {}
    assert.truthy(eventually(e, function()
      for _, ev in ipairs(H.events(e, "source.error")) do errs[#errs + 1] = ev end
      return #errs >= 2
    end))
    assert.matches("connection lost", errs[1].message)
    assert.matches("terminating connection due to administrator command", errs[1].message)
    assert.matches("cannot connect", errs[2].message)
    assert.equal(1, e:get("cfg.n"))                   -- kept while the server is away
    srv:start()
    assert.truthy(eventually(e, function() return e:get("cfg.n") == 2 end))
    assert.truthy(#H.events(e, "source.recovered") >= 1)
    -- LISTEN is back too: a change notifies again.
    srv:sql([[UPDATE settings SET value = '3' WHERE key = 'n']])
    assert.truthy(eventually(e, function() return e:get("cfg.n") == 3 end))
    -- It comes back empty: no rows is absent, and the default applies.
    srv:single([[DELETE FROM settings]])
    srv:start()
    assert.truthy(eventually(e, function() return e:get("cfg.empty") == true end))
    assert.is_nil(e:get("cfg.n"))
  end)

  it("resolves host names off the loop, and tries the next host when one fails", function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'n', '1')]])
    -- The first host does not resolve (left out), the second refuses (port 1: libpq
    -- opens the next socket, usually with the same number), the third answers.
    local e = H.engine(policy(("conninfo = 'host=nonexistent.invalid,127.0.0.1,localhost "
      .. "port=1,1,%d dbname=app user=postgres', %s, %s"):format(srv.port, KV, FAST)))
    assert.truthy(e:run_until(function() return e:get("cfg.n") == 1 end))
    assert.equal(0, #H.events(e, "source.error"))
    local e2 = H.engine(policy(("conninfo = 'host=nonexistent.invalid port=%d dbname=app',"
      .. " %s, %s"):format(srv.port, KV, FAST)))
    local err = H.wait_event(e2, "source.error")
    assert.truthy(err)
    assert.matches("cannot resolve the host name nonexistent.invalid", err.message)
    assert.equal(("postgres://nonexistent.invalid:%d/app"):format(srv.port), err.file)
  end)

  it("with cache_for runs the query once, holds the value, then runs it again", function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'n', '1')]])
    local e = H.engine(policy(("conninfo = %q, query = '/* held */ SELECT key, value "
      .. "FROM settings WHERE app = $1', params = { 'billing' }, listen = "
      .. "'settings_changed', interval = '100ms'"):format(srv:conninfo()),
      ", cache_for = '1500ms'"))
    assert.equal(1, e:get("cfg.n"))
    local held = H.wait_event(e, "component.state")
    assert.truthy(held and held.message:find("holding the value for 1500 ms", 1, true))
    -- The source is stopped (no connection, no LISTEN): a change is not seen, and the
    -- query is not run every 100 ms.
    srv:sql([[UPDATE settings SET value = '2']])
    e:run("500ms")
    assert.equal(1, e:get("cfg.n"))
    assert.equal(1, srv:log_count("/* held */"))
    assert.truthy(e:run_until(function() return e:get("cfg.n") == 2 end, "5s"))
    assert.equal(2, srv:log_count("/* held */"))
  end)

  it("reports a wrong password without showing it, and connects with the right one",
    function()
    srv:sql([[INSERT INTO settings VALUES ('billing', 'n', '1')]])
    local dir = H.tmpdir("pg-password")
    H.write(dir .. "/policy.lua", policy(("conninfo_env = 'RC_SPEC_PG', %s, %s")
      :format(KV, FAST)))
    local e = assert(rc.engine(dir .. "/policy.lua"))
    e:setenv("RC_SPEC_PG", srv:conninfo("reader", "wr0ng-Pass-5"))
    finally(function()
      e:setenv("RC_SPEC_PG", nil)
      e:close()
      H.rmdir(dir)
    end)
    assert(e:start())
    local err = H.wait_event(e, "source.error")
    assert.truthy(err)
    assert.matches("password authentication failed", err.message)
    assert.equal(("postgres://reader@%s:%d/app"):format(srv.dir, srv.port), err.file)
    e:run("300ms")
    assert.is_nil(e:get("cfg"))
    e:setenv("RC_SPEC_PG", srv:conninfo("reader", "R1ght-Pass-7"))
    assert.truthy(eventually(e, function() return e:get("cfg.n") == 1 end))
    local all = e:events()
    local recovered = false
    for _, ev in ipairs(all) do
      recovered = recovered or ev.event == "source.recovered"
      for _, text in ipairs { ev.message or "", ev.file or "" } do
        assert.not_matches("wr0ng", text)
        assert.not_matches("R1ght", text)
      end
    end
    assert.truthy(recovered)
  end)
end)
