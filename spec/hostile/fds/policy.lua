-- Few file descriptors (spec/hostile/run.sh runs it under ulimit -n 5 to 20): file
-- sources, a remote source, the environment and a Lua source with a luv timer.
local rc = require "reactcfg"
return rc.policy { components = {
  f1 = rc.file "f1.json", f2 = rc.file "f2.json", f3 = rc.file "f3.json",
  f4 = rc.file "f4.json", f5 = rc.file "f5.json",
  h = { source = rc.http { url = "http://127.0.0.1:9/x.json", interval = "1s" },
        startup = "default", default = {} },
  e = rc.env "HOME",
  l = rc.lua_source(function(emit, uv)
    local t = uv.new_timer()
    t:start(10, 10, function() emit({ t = 1 }) end)
    return function() t:close() end
  end),
} }
