-- hostile: a default that is one table shared 2^60 times (converted node by node)
-- expect: component 'a': default: .*stopped: the time budget ran out converting the value
local rc = require "reactcfg"
local t = {}
for i = 1, 60 do t = { t, t } end
return rc.policy { components = { a = { source = rc.env "HOSTILE_UNSET", default = t } } }
