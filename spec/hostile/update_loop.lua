-- hostile: an update function that loops in a coroutine created at load
-- run: component 'a': update: .*stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local co = coroutine.wrap(function() while true do end end)
return rc.policy {
  components = { a = { source = rc.lua_source(function(emit) emit({ x = 1 }) end),
                       update = function(v) co() return v end } },
  limits = { time = "200ms" },
}
