-- Feature flags and settings kept in Redis, followed as they change (keyspace
-- notifications), with a promotion whose Redis TTL the policy reads.
--
--   HSET app:flags new_ui on beta_api off        -- flags: a hash, one field per flag
--   SET  app:cfg:db '{"host": "db1", "pool": 8}' -- settings: one JSON key per section
--   SET  app:promo '{"banner": "Spring sale"}' EX 3600   -- gone by itself in an hour
--
-- Point ADDR at your server (redis://user:password@host:port/db, or give the password in
-- the environment with password_env). Start it before the engine, or the components
-- start from the last values kept in .cache (or their defaults) and catch up.
local rc = require "reactcfg"

local ADDR = "redis://127.0.0.1:6379/0"

-- Hash fields are text: "on", "yes", "true", "1" -> true; anything else -> false.
local ON = { on = true, yes = true, ["true"] = true, ["1"] = true }

return rc.policy {
  -- Last-known-good values, for a start while Redis is down.
  cache = ".cache",

  components = {
    flags = {
      -- ttl: if Redis cannot be read for an hour, the flags are treated as absent (the
      -- default, everything off) instead of staying as they were for ever.
      source = rc.redis { addr = ADDR, hash = "app:flags", ttl = "1h" },
      default = {},
      startup = "cached",
      transform = function(v)
        local out = {}
        for name, word in pairs(v) do out[name] = ON[tostring(word):lower()] == true end
        return out
      end,
    },

    -- Every key under app:cfg: is one section (app:cfg:db -> settings.db), parsed as JSON.
    settings = {
      source = rc.redis { addr = ADDR, prefix = "app:cfg:" },
      default = { db = { host = "localhost", pool = 4 } },
      startup = "cached",
    },

    -- A promotion that Redis expires by itself; ctx.ttl is its time to live in seconds
    -- when it was read, so the application can show a countdown.
    promo = {
      source = rc.redis { addr = ADDR, key = "app:promo" },
      startup = "default",
      update = function(new, ctx)
        if new == nil then return nil end
        new.ends_in_s = ctx.ttl and math.floor(ctx.ttl) or nil
        return new
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
