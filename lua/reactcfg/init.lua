-- reactcfg: the policy vocabulary (`require "reactcfg"`). A policy calls these to declare
-- components and their sources; they only build and check descriptions, the engine does
-- the watching. The same text runs inside the engine and in a plain lua5.4.

local duration = require "reactcfg.duration"
local remote = require "reactcfg.remote"
local tables = require "reactcfg.tables"

local M = {}

-- Line of the policy code that called a vocabulary function, so that load errors can
-- point at the declaration. Level 3: the caller of the function that calls `caller_line`.
local getinfo = debug and debug.getinfo
local function caller_line()
  if not getinfo then return nil end
  for level = 3, 6 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and not info.source:find("^@lua/reactcfg/") then
      return info.currentline
    end
  end
  return nil
end

local SOURCE = {}   -- metatable marking a source description
local POLICY = {}   -- metatable marking a policy description
SOURCE.__name = "reactcfg.source"
POLICY.__name = "reactcfg.policy"
SOURCE.__metatable = "reactcfg.source"
POLICY.__metatable = "reactcfg.policy"
SOURCE.__tostring = function(s)
  return ("%s(%s)"):format(s.kind, s.path or s.name or s.prefix or
    (s.kind == "lua" and "function") or "?")
end

local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local function check_options(fname, opts, allowed)
  for k in pairs(opts) do
    if not allowed[k] then
      error(("%s: unknown option '%s'"):format(fname, tostring(k)), 3)
    end
  end
end

--- rc.file(path [, opts]): the contents of a file, parsed by format (extension or
--- opts.format). opts: format, settle, missing_grace, limits, poll (the interval of the
--- fallback polling used while inotify is unavailable).
function M.file(path, opts)
  if type(path) == "table" and opts == nil then
    opts, path = path, path.path
  end
  if type(path) ~= "string" or path == "" then
    argerror(1, "file", "a file path (string) expected, got " .. type(path))
  end
  opts = opts or {}
  if type(opts) ~= "table" then argerror(2, "file", "options table expected") end
  check_options("file", opts, {
    path = true, format = true, settle = true, missing_grace = true, limits = true,
    poll = true,
  })
  return setmetatable({
    kind = "file", path = path, format = opts.format, limits = opts.limits,
    settle = opts.settle, missing_grace = opts.missing_grace, poll = opts.poll,
    line = caller_line(),
  }, SOURCE)
end

--- rc.env("NAME") or rc.env { name = "NAME" | prefix = "APP_", interval = "1s",
--- lower = true }: one environment variable (a string), or every variable with a
--- prefix gathered into a table (prefix removed, keys lower-cased unless lower = false).
function M.env(arg)
  local spec
  if type(arg) == "string" then
    spec = { name = arg }
  elseif type(arg) == "table" then
    check_options("env", arg, { name = true, prefix = true, interval = true, lower = true })
    spec = { name = arg.name, prefix = arg.prefix, interval = arg.interval, lower = arg.lower }
  else
    argerror(1, "env", "a variable name or an options table expected, got " .. type(arg))
  end
  if (spec.name == nil) == (spec.prefix == nil) then
    error("env: give exactly one of 'name' or 'prefix'", 2)
  end
  if spec.name ~= nil and (type(spec.name) ~= "string" or spec.name == "") then
    error("env: 'name' must be a non-empty string", 2)
  end
  if spec.prefix ~= nil and type(spec.prefix) ~= "string" then
    error("env: 'prefix' must be a string", 2)
  end
  if spec.lower ~= nil and type(spec.lower) ~= "boolean" then
    error("env: 'lower' must be a boolean", 2)
  end
  spec.kind = "env"
  spec.line = caller_line()
  return setmetatable(spec, SOURCE)
end

--- rc.lua_source(function(emit, uv, ctx) ... end [, opts]): a source written in Lua. The
--- function runs on the engine's loop when the source starts, with `emit(value)` to
--- deliver a value (nil = absent), `emit(nil, "message")` to report an error, `uv` (luv on
--- the engine's loop: timers, processes, sockets) and ctx { name, parse(text, format) }.
--- It may return a function that the engine calls when the source stops (close your
--- handles there). opts: none yet (reserved).
function M.lua_source(fn, opts)
  if type(fn) ~= "function" then
    argerror(1, "lua_source", "a function(emit, uv, ctx) expected, got " .. type(fn))
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(2, "lua_source", "options table expected")
  end
  check_options("lua_source", opts or {}, { name = true })
  return setmetatable({ kind = "lua", fn = fn, name = opts and opts.name,
    line = caller_line() }, SOURCE)
end

-- rc.http { url, ... }, rc.consul { key | prefix, ... }, rc.vault { path, ... },
-- rc.etcd { endpoints, key | prefix, ... }: remote
-- sources; their options are documented and checked in reactcfg.remote.
remote.bind(SOURCE, caller_line)
M.http, M.consul, M.vault, M.etcd = remote.http, remote.consul, remote.vault,
  remote.etcd

--- rc.policy { components = {...}, on_change = function(changes, snapshot) end }
function M.policy(t)
  if type(t) ~= "table" then
    argerror(1, "policy", "a table expected, got " .. type(t))
  end
  t.line = t.line or caller_line()
  return setmetatable(t, POLICY)
end

--- rc.duration("200ms") -> milliseconds (number); see reactcfg.duration.
M.duration = duration.parse

--- Whether a value is a source description made by rc.file, rc.env, ...
function M.is_source(v)
  return getmetatable(v) == "reactcfg.source"
end

function M.is_policy(v)
  return getmetatable(v) == "reactcfg.policy"
end

--- rc.merge(base, over [, opts]), rc.copy(v), rc.get(t, path), rc.set(t, path, v): deep
--- merge, deep copy and path access on config values; see reactcfg.tables.
M.merge, M.copy, M.get, M.set = tables.merge, tables.copy, tables.get, tables.set
tables.bind(M)

-- M.null (the JSON null of config values, the same value as cjson.null) and M.array_mt
-- (the metatable that marks a table as an array) are added by the C loader.

M.version = "0.1.0"

return M
