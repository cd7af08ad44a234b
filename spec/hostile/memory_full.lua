-- hostile: fills the Lua heap to its cap (every allocation then runs a full emergency
-- collection), catches the memory error and goes on allocating garbage
-- expect: memory_full.lua:[0-9]+: .*stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local t = {}
pcall(function() while true do t[#t + 1] = { #t } end end)
local n = 0
while true do n = n + 1; local x = { n } end
return rc.policy { components = {} }
