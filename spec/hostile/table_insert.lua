-- hostile: a table whose length says 2^40: insert shifts every element in C
-- expect: table_insert.lua:5: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local t = setmetatable({}, { __len = function() return 1 << 40 end })
table.insert(t, 1, "x")
return rc.policy { components = {} }
