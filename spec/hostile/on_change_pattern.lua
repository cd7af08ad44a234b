-- hostile: on_change stuck in a pattern; SIGTERM must still stop --run
-- run: on_change: .*stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
return rc.policy {
  components = { a = rc.lua_source(function(emit) emit({ x = 1 }) end) },
  limits = { time = "200ms" },
  on_change = function() string.find(("a"):rep(40), ("a*"):rep(40) .. "b") end,
}
