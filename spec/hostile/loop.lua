-- hostile: an endless loop at load
-- expect: loop.lua:4: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
while true do end
