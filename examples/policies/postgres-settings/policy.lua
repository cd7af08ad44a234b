-- Settings and feature flags kept in PostgreSQL, followed as they change.
--
-- The connection string comes from $APP_PG (libpq's "host=... dbname=... user=...
-- password=..." or a postgresql:// URI); it is a secret: events and errors name only
-- user@host:port/db. Each source LISTENs on `config_changed` (schema.sql's triggers
-- notify it) and runs its query again when told, and every `interval` besides in case a
-- notification was missed. While the server is down or a query fails, the last good
-- values stay and the source retries with backoff.
local rc = require "reactcfg"

local function pg(query, params)
  return rc.postgres {
    conninfo_env = "APP_PG",
    query = query,
    params = params,
    listen = "config_changed",
    interval = "30s",            -- the fallback: a poll even without notifications
    timeout = "5s",              -- statement_timeout of each run
  }
end

return rc.policy {
  components = {
    -- Two columns named key and value: a table, each jsonb value parsed.
    -- { invoice = { max_lines = 500, currency = "EUR" }, retry = { ... } }
    billing = {
      source = pg("SELECT key, value FROM settings WHERE app = $1", { "billing" }),
      default = { invoice = { max_lines = 100, currency = "EUR" } },
      validate = function(v)
        local lines = v.invoice and v.invoice.max_lines
        return math.type(lines) == "integer" and lines > 0,
          "invoice.max_lines must be a positive integer"
      end,
    },

    -- Any other shape: one table per row, with the column types kept (booleans,
    -- numerics, timestamps as RFC 3339 text in Lua). Turned into name -> flag here.
    flags = {
      source = pg("SELECT name, enabled, rollout, expires_at FROM feature_flags " ..
                  "ORDER BY name"),
      transform = function(rows)
        local flags = {}
        for _, row in ipairs(rows) do
          flags[row.name] = { on = row.enabled, rollout = row.rollout,
                              expires_at = row.expires_at }
        end
        return flags
      end,
    },
  },

  on_change = function(changes, snapshot)
    for _, c in ipairs(changes) do
      print(("revision %d: %s %s"):format(snapshot.revision, c.kind, c.path))
    end
  end,
}
