-- hostile: endless loops inside pcall, which catches the budget's error
-- expect: pcall_loop.lua:4: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
while true do pcall(function() while true do end end) end
