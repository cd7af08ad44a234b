-- Live settings pushed by a configuration service over a WebSocket: every message is
-- the whole settings document (JSON), the current one first on every connection.
--
--   {"rate_limit": 200, "maintenance": false, "banner": "Welcome"}
--
-- Point URL at your service (wss:// for TLS; credentials in token_env, sent as a bearer
-- token, or in the URL as user:password). While the service cannot be reached the last
-- settings stay; at a start while it is down they come from .cache.
local rc = require "reactcfg"

local URL = "ws://127.0.0.1:8765/live"

return rc.policy {
  -- Last-known-good values, for a start while the service is down.
  cache = ".cache",

  components = {
    live = {
      -- ping: a connection silent for 15 s is pinged; one silent for 15 s + timeout is
      -- taken as dead and opened again (the last settings stay meanwhile).
      source = rc.websocket { url = URL, ping = "15s", timeout = "5s",
                              max_bytes = "256KiB" },
      default = { rate_limit = 100, maintenance = false },
      startup = "cached",
      -- A pushed document that makes no sense is refused (change.rejected); the
      -- settings in force stay.
      validate = function(v)
        if type(v) ~= "table" then return false, "settings must be an object" end
        if math.type(v.rate_limit) ~= "integer" or v.rate_limit < 1 then
          return false, "rate_limit must be a positive integer"
        end
        if type(v.maintenance) ~= "boolean" then
          return false, "maintenance must be true or false"
        end
        return true
      end,
    },
  },

  on_change = function(changes, snapshot)
    for _, c in ipairs(changes) do
      print(("revision %d: %s %s -> %s"):format(snapshot.revision, c.kind, c.path,
        tostring(c.new)))
    end
  end,
}
