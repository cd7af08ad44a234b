-- Configuration pushed through Kafka compacted topics: one record per key, the latest
-- wins, a tombstone (a null value) removes the key. The engine reads each topic from the
-- beginning at start (the first value is complete only when every partition reached
-- its end), then follows new records as they come.
--
--   app-config   key "billing" -> {"currency": "EUR", "retries": 3}   (one key)
--   app-flags    key "<flag>"  -> true | false                        (every key)
--
-- Point BROKERS at your cluster. Start it before the engine, or the components start
-- from the last values kept in .cache (or their defaults) and catch up.
local rc = require "reactcfg"

local BROKERS = "127.0.0.1:9092"

return rc.policy {
  -- Last-known-good values, for a start while the brokers are down.
  cache = ".cache",

  components = {
    -- One key of a topic: the latest "billing" record, parsed as JSON.
    billing = {
      source = rc.kafka { brokers = BROKERS, topic = "app-config", key = "billing" },
      default = { currency = "USD", retries = 1 },
      startup = "cached",
      validate = function(v)
        if type(v.retries) ~= "number" or v.retries < 0 then
          return false, "retries must be a number >= 0"
        end
        return true
      end,
    },

    -- Every key of a topic: flag name -> its latest record (JSON true/false).
    flags = {
      source = rc.kafka { brokers = BROKERS, topic = "app-flags" },
      default = {},
      startup = "cached",
    },
  },

  on_change = function(changes, snapshot)
    for _, c in ipairs(changes) do
      print(("revision %d: %s %s -> %s"):format(snapshot.revision, c.kind, c.path,
        tostring(c.new)))
    end
  end,
}
