-- hostile: a pattern that backtracks exponentially inside C
-- expect: pattern_find.lua:4: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local x = string.find(("a"):rep(40), ("a*"):rep(40) .. "b")
return rc.policy { components = {} }
