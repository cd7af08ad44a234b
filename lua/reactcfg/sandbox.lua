-- reactcfg.sandbox: the environment a policy runs in. One reviewed allow list, read-only
-- library tables, a `require` that only knows our modules, and errors for undeclared
-- globals (typos) instead of silent nils.

local M = {}

-- A read-only view of `t`: reads go through, writes raise, the metatable is hidden.
local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k)
      error(("attempt to modify read-only table '%s' (field '%s')"):format(name, tostring(k)), 2)
    end,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = name,
  })
end
M.readonly = readonly

local function copy(t, keys)
  local out = {}
  for _, k in ipairs(keys) do out[k] = t[k] end
  return out
end

-- Each entry is allowed for a reason:
local BASE = {
  -- pure functions on values
  "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
  "type", "xpcall", "rawequal", "rawlen", "rawget", "rawset",
  -- metatables on the policy's own tables (ours are protected by __metatable)
  "getmetatable", "setmetatable",
}
local LIBS = {
  string = { "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match",
             "rep", "reverse", "sub", "upper", "pack", "packsize", "unpack" }, -- no dump
  table = { "concat", "insert", "move", "pack", "remove", "sort", "unpack" },
  math = { "abs", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log", "max",
           "maxinteger", "min", "mininteger", "modf", "pi", "rad", "random", "sin", "sqrt",
           "tan", "tointeger", "type", "ult", "atan", "asin", "acos" },
  utf8 = { "char", "charpattern", "codepoint", "codes", "len", "offset" },
  os = { "time", "clock", "date", "difftime" },   -- time only: no files, no processes
}

-- Modules a policy may require; each is returned as a read-only view.
local REQUIRABLE = { reactcfg = true, ["reactcfg.duration"] = true,
  ["reactcfg.tables"] = true }

-- Modules the embedding application allowed (rc_engine_allow_module), found on the
-- engine's package.path / cpath.
local allowed = {}
function M.allow(name) allowed[name] = true end

local cache = {}
local function policy_require(name)
  if type(name) ~= "string" or not (REQUIRABLE[name] or allowed[name]) then
    local extra = {}
    for n in pairs(allowed) do extra[#extra + 1] = n end
    table.sort(extra)
    error(("module '%s' is not available to policies (allowed: reactcfg%s)"):format(
      tostring(name), #extra > 0 and ", " .. table.concat(extra, ", ") or ""), 2)
  end
  if not cache[name] then
    local mod = require(name)
    cache[name] = type(mod) == "table" and readonly(mod, name) or mod
  end
  return cache[name]
end

-- print, as Lua's (tostring of each argument, tabs between), becomes a policy.log event
-- (or "[policy] ..." on stderr when nobody listens): see core/policy/policy_log.c.
local policy_log = require "reactcfg.policy_log"
local function print_to_log(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  policy_log(table.concat(parts, "\t", 1, parts.n))
end

--- env() -> a fresh environment table for one policy load.
function M.env()
  local env = copy(_G, BASE)
  for lib, names in pairs(LIBS) do env[lib] = readonly(copy(_G[lib], names), lib) end
  env.require = policy_require
  env.print = print_to_log
  env._VERSION = _VERSION
  env._G = env
  return setmetatable(env, {
    __index = function(_, k)
      error(("undeclared global '%s' (declare it with 'local')"):format(tostring(k)), 2)
    end,
    __newindex = function(_, k)
      error(("assignment to undeclared global '%s' (declare it with 'local')")
        :format(tostring(k)), 2)
    end,
    __metatable = "reactcfg.env",
  })
end

return M
