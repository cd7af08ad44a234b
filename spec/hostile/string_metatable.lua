-- hostile: changing the string metatable for the engine's own code
-- expect: string_metatable.lua:4: attempt to index a string value
local rc = require "reactcfg"
getmetatable("").__index = function() while true do end end
return rc.policy { components = {} }
