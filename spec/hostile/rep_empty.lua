-- hostile: string.rep of nothing a huge number of times (Lua loops over the count)
-- expect: rep_empty.lua: ok
local rc = require "reactcfg"
assert(("").rep("", math.maxinteger) == "")
assert(string.rep("", 1 << 40, "") == "")
return rc.policy { components = {} }
