-- hostile: a finalizer that loops (Lua runs __gc with hooks off)
-- expect: gc_finalizer.lua:4: setmetatable: finalizers \(__gc\) are not available to policies
local rc = require "reactcfg"
setmetatable({}, { __gc = function() while true do end end })
return rc.policy { components = {} }
