-- hostile: the same through rawset
-- expect: array_mt_rawset.lua:4: rawset: table 'reactcfg.array_mt' is read-only
local rc = require "reactcfg"
rawset(rc.array_mt, "__gc", function() while true do end end)
return rc.policy { components = {} }
