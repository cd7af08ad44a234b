-- hostile: table.concat over 2^40 elements each produced by a C function (rawlen)
-- expect: concat_c_index.lua:5: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local t = setmetatable({}, { __index = rawlen })
local s = table.concat(t, "", 1, 1 << 40)
return rc.policy { components = {} }
