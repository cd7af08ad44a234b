-- hostile: the vocabulary's own code (rc.copy, ours) asked by the policy to copy one
-- table shared 2^60 times; ours gets a short grace past the budget, not for ever
-- expect: rc_copy_dag.lua:7: .*stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
local t = {}
for i = 1, 60 do t = { t, t } end
local c = rc.copy(t)
return rc.policy { components = {} }
