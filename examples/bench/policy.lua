-- SPDX-License-Identifier: MIT (see LICENSE)
-- The test bench's example (docs/REPL.md): live settings that may change at most once
-- every 5 seconds, checked before they apply, and a debug block only in development.
local rc = require "reactcfg"

return rc.policy {
  components = {
    mode     = { source = rc.env "APP_MODE", default = "production" },
    settings = { source = rc.file "settings.json",
                 throttle = { every = "5s", burst = 1 },
                 validate = function(s)
                   return s.workers >= 1, "workers must be at least 1"
                 end },
    debug    = { source = rc.file "debug.json", default = { verbose = false },
                 condition = function(c) return c.mode == "development" end },
  },
}
