-- hostile: a C loop over 2^62 indices
-- expect: table_move.lua:4: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
table.move({}, 1, 1 << 62, 2)
return rc.policy { components = {} }
