-- Throttling and rate limiting: live settings that may change often, applied at a pace
-- the application can take.
--
-- Two tools, one after the other:
--   debounce  a burst of saves in quick succession (an editor writing twice, a deploy
--             tool touching the file, a script looping) becomes ONE update, once the
--             file has been quiet for 100 ms (or 1 s after the burst began at most);
--   throttle  a token bucket: at most `burst` updates at once, then one per `every`.
--             An update that finds no token is held, a newer one replaces it, and the
--             last one is applied as soon as a token comes back: never dropped.
-- The first read at start is neither throttled nor counted.
local rc = require "reactcfg"

return rc.policy {
  components = {
    -- In production this could be rc.http { url = "https://config.service/live",
    -- interval = "30s" }; a file makes the example easy to try.
    live = {
      source = rc.file "live.json",
      debounce = { quiet = "100ms", max = "1s" },
      throttle = { every = "1s", burst = 3 },
    },
  },

  on_change = function(changes, snapshot)
    local live = snapshot.live or {}           -- absent if live.json is deleted
    print(("revision %d at %s: %d change(s), banner %q"):format(snapshot.revision,
      os.date("%H:%M:%S"), #changes, tostring(live.banner)))
  end,
}
