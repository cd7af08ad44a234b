-- hostile: on_change with a looping message handler; the engine must report it, go on
-- and stop promptly on SIGTERM
-- run: on_change: .*stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
return rc.policy {
  components = { a = rc.lua_source(function(emit) emit({ x = 1 }) end) },
  limits = { time = "200ms" },
  on_change = function()
    xpcall(function() error("x") end, function() while true do end end)
  end,
}
