-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.lua: rc.lua_source(function(emit, uv, ctx) ... end [, opts]), a source
-- written in Lua. The function runs on the engine's loop when the source starts, with
-- `emit(value)` to deliver a value (nil = absent), `emit(nil, "message")` to report an
-- error, `uv` (luv on the engine's loop: timers, processes, sockets) and
-- ctx { name, dir, parse(text, format) }. It may return a function that the engine calls
-- when the source stops (close your handles there). opts: name (shown in messages).

local base = require "reactcfg.source_base"

local M = { constructors = {} }

function M.constructors.lua_source(fn, opts)
  if type(fn) ~= "function" then
    base.argerror(1, "lua_source", "a function(emit, uv, ctx) expected, got " .. type(fn))
  end
  if opts ~= nil and type(opts) ~= "table" then
    base.argerror(2, "lua_source", "options table expected")
  end
  base.check_options("lua_source", opts or {}, { name = true })
  return base.make("lua", { fn = fn, name = opts and opts.name })
end

function M.normalize(src, out)
  out.fn = src.fn
  out.target = src.name or "function"
end

return M
