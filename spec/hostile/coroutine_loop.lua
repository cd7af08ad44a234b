-- hostile: an endless loop inside a coroutine, and resuming it again and again
-- expect: coroutine_loop.lua:6: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local co = coroutine.create(function() while true do end end)
while true do
  coroutine.resume(co)
end
