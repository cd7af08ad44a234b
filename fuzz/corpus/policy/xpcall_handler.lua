-- hostile: a message handler that loops (Lua runs handlers with hooks off after an
-- error raised by a hook)
-- expect: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
xpcall(function() while true do end end, function() while true do end end)
return rc.policy { components = {} }
