-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources: the source kinds, in the order of the C registry
-- (sources/registry.c). Each kind's Lua half is reactcfg.sources.<kind>: constructors
-- (rc.file, rc.http, ...) and `normalize`, which checks a description's options and
-- fills the flat table the C source reads. What a kind *is* (cacheable, waits at start,
-- accepts retry) and its numeric defaults come from C (reactcfg.kinds), so each is
-- written once.

local M = { kinds = {}, list = {}, constructors = {} }

-- A constructor called with more arguments than it takes is an error, not arguments
-- silently dropped (rc.http(url, { interval = "5s" }) would poll at the default).
local function strict(name, fn)
  local info = debug and debug.getinfo and debug.getinfo(fn, "u")
  if not info or info.isvararg then return fn end
  local nparams = info.nparams
  return function(...)
    local n = select("#", ...)
    if n > nparams then
      error(("rc.%s takes %d argument%s, got %d%s"):format(name, nparams,
        nparams == 1 and "" or "s", n, nparams == 1
          and " (options go in the one table: rc." .. name .. " { ... })" or ""), 2)
    end
    return fn(...)
  end
end

for _, k in ipairs(require "reactcfg.kinds") do
  local mod = require("reactcfg.sources." .. k.name)
  local kind = { name = k.name, flags = k.flags, defaults = k.defaults,
    normalize = mod.normalize, constructors = mod.constructors }
  M.kinds[k.name] = kind
  M.list[#M.list + 1] = kind
  for name, fn in pairs(mod.constructors) do M.constructors[name] = strict(name, fn) end
end

--- The constructors of the kinds that accept a component's `retry`, in registry order,
--- for messages.
function M.retry_names()
  local names = {}
  for _, k in ipairs(M.list) do
    if k.flags.retry then
      local ctors = {}
      for ctor in pairs(k.constructors) do ctors[#ctors + 1] = "rc." .. ctor end
      table.sort(ctors)
      table.move(ctors, 1, #ctors, #names + 1, names)
    end
  end
  return table.concat(names, ", ")
end

return M
