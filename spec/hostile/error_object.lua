-- hostile: an error object whose __tostring loops
-- expect: error_object.lua
local rc = require "reactcfg"
error(setmetatable({}, { __tostring = function() while true do end end }))
