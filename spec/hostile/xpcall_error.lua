-- hostile: a message handler that loops after an ordinary error
-- expect: stopped: the policy ran longer than its time budget
local rc = require "reactcfg"
xpcall(function() error("x") end, function() while true do end end)
return rc.policy { components = {} }
