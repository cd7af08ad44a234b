-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.env: rc.env("NAME") or rc.env { name = "NAME" | prefix = "APP_",
-- interval = "1s", lower = true }: one environment variable (a string), or every
-- variable with a prefix gathered into a table (prefix removed, keys lower-cased unless
-- lower = false). The environment has no change notification: it is looked at every
-- `interval`, and at once after rc_engine_setenv.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

function M.constructors.env(arg)
  local spec
  if type(arg) == "string" then
    spec = { name = arg }
  elseif type(arg) == "table" then
    base.check_options("env", arg, { name = true, prefix = true, interval = true,
      lower = true })
    spec = { name = arg.name, prefix = arg.prefix, interval = arg.interval, lower = arg.lower }
  else
    base.argerror(1, "env", "a variable name or an options table expected, got " .. type(arg))
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
  return base.make("env", spec)
end

function M.normalize(src, out, h)
  out.name, out.prefix = src.name, src.prefix
  out.target = src.name or (src.prefix .. "*")
  out.lower = src.lower ~= false
  out.interval_ms = src.interval and h.duration(src.interval, "interval")
    or h.default("interval_ms")
  if out.interval_ms < 1 then h.component_fail("env interval must be at least 1ms") end
end

return M
