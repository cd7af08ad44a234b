-- SPDX-License-Identifier: MIT (see LICENSE)
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
  "type", "rawequal", "rawlen", "rawget",
  -- getmetatable on the policy's own tables (ours are protected by __metatable);
  -- setmetatable, rawset and xpcall are below, each with a guard
  "getmetatable",
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
  -- generators; a coroutine inherits the time budget's hook like any code of the policy
  coroutine = { "close", "create", "isyieldable", "resume", "running", "status", "wrap",
                "yield" },
}
-- In the engine, the pattern functions, string.rep/upper/lower/reverse/format, table
-- concat/insert/remove/move/sort and utf8.len/offset are the engine's bounded versions
-- (core/policy/lpattern.c, lbounded.c): none can hold the engine beyond the time budget.

-- setmetatable without finalizers: Lua runs __gc with its hooks switched off, so a
-- finalizer would run outside the time budget (and at a moment no budget is armed).
-- Library errors are raised again at the policy's line (called directly, Lua would name
-- this wrapper's line: a C function is never tail-called).
local function policy_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: finalizers (__gc) are not available to policies: they would "
      .. "run outside the time budget", 2)
  end
  local ok, r = pcall(setmetatable, t, mt)
  if not ok then error(r, 2) end
  return r
end

-- rawset, except on tables the engine protects (their metatable is hidden behind a
-- name): the vocabulary's views, the environment, reactcfg.array_mt.
local function policy_rawset(t, k, v)
  if type(getmetatable(t)) == "string" then
    error(("rawset: table '%s' is read-only"):format(getmetatable(t)), 2)
  end
  local ok, r = pcall(rawset, t, k, v)
  if not ok then error(r, 2) end
  return r
end

-- xpcall whose handler runs after the error, under the time budget. Lua runs a message
-- handler before unwinding, with hooks off when the error came from a hook (the budget
-- stopping the policy): a handler that loops would hold the engine for ever. The
-- handler gets the error object; the stack it was raised on is already gone (policies
-- have no debug library to look at it).
local function finish_xpcall(handler, ok, ...)
  if ok then return true, ... end
  local _, r = pcall(handler, (...))
  return false, r
end
local function policy_xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    error(("bad argument #2 to 'xpcall' (function expected, got %s)"):format(
      type(handler)), 2)
  end
  return finish_xpcall(handler, pcall(f, ...))
end

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
-- (or "[policy] ..." on stderr when nobody listens): see core/policy/policy_log.c. A line
-- is cut at 8 KiB (a write the size of a large string could block the engine while
-- stderr's reader is slow, and an event that size helps nobody).
local PRINT_MAX = 8192
local policy_log = require "reactcfg.policy_log"
local function print_to_log(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  local line = table.concat(parts, "\t", 1, parts.n)
  if #line > PRINT_MAX then line = line:sub(1, PRINT_MAX) .. " ...(cut)" end
  policy_log(line)
end

--- env() -> a fresh environment table for one policy load.
function M.env()
  local env = copy(_G, BASE)
  for lib, names in pairs(LIBS) do env[lib] = readonly(copy(_G[lib], names), lib) end
  env.require = policy_require
  env.print = print_to_log
  env.setmetatable = policy_setmetatable
  env.rawset = policy_rawset
  env.xpcall = policy_xpcall
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
