-- hostile: a finalizer on the metatable the engine gives every array it converts
-- expect: array_mt_gc.lua:4: attempt to modify read-only table 'reactcfg.array_mt'
local rc = require "reactcfg"
rc.array_mt.__gc = function() while true do end end
return rc.policy { components = {} }
