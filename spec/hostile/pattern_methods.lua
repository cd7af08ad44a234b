-- hostile: the same through the string metatable, gsub and gmatch; the budget's error
-- caught by pcall is raised again on the next line
-- expect: pattern_methods.lua:7: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local s, p = ("a"):rep(30), ("a-"):rep(30) .. "b"
local ok = pcall(s.gsub, s, p, "x")
for m in s:gmatch(p) do end
return rc.policy { components = {} }
