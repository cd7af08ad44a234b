-- hostile: __gc added to a metatable after it was set, then the metatable used again
-- expect: gc_late.lua:7: setmetatable: finalizers \(__gc\) are not available to policies
local rc = require "reactcfg"
local mt = {}
local t = setmetatable({}, mt)
mt.__gc = function() while true do end end
setmetatable({}, mt)
return rc.policy { components = {} }
