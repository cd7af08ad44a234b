-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg: the policy vocabulary (`require "reactcfg"`). A policy calls these to declare
-- components and their sources; they only build and check descriptions, the engine does
-- the watching. The same text runs inside the engine and in a plain lua5.4.

local base = require "reactcfg.source_base"
local duration = require "reactcfg.duration"
local sources = require "reactcfg.sources"
local tables = require "reactcfg.tables"

local M = {}

local POLICY = {}   -- metatable marking a policy description
POLICY.__name = "reactcfg.policy"
POLICY.__metatable = "reactcfg.policy"

-- The source constructors, one module per kind (reactcfg.sources.<kind>): rc.file,
-- rc.env, rc.lua_source, rc.http, rc.consul, rc.vault, rc.etcd, ...
for name, fn in pairs(sources.constructors) do M[name] = fn end

--- rc.policy { components = {...}, on_change = function(changes, snapshot) end }
function M.policy(t)
  if type(t) ~= "table" then
    base.argerror(1, "policy", "a table expected, got " .. type(t))
  end
  t.line = t.line or base.caller_line()
  return setmetatable(t, POLICY)
end

--- rc.PENDING: what a reload module's apply returns when it answers later, through
--- reload.done(ok [, why]) (see docs/POLICY.md, "Reload modules").
M.PENDING = setmetatable({}, { __name = "reactcfg.pending", __metatable = false,
  __tostring = function() return "rc.PENDING" end })

--- rc.duration("200ms") -> milliseconds (number); see reactcfg.duration.
M.duration = duration.parse

--- Whether a value is a source description made by rc.file, rc.env, ...
M.is_source = base.is_source

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
