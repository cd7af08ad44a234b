-- hostile: os.date runs strftime once per conversion of its format
-- expect: date_format.lua:4: date format longer than 4096 bytes
local rc = require "reactcfg"
local s = os.date(("%c"):rep(1 << 22))
return rc.policy { components = {} }
