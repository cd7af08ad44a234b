-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.push: rc.push([opts]), a source only the application feeds, with
-- rc_engine_push(engine, component, text, len, format) (or e:push in the Lua module):
-- the text is parsed in the format the application names, within this source's limits,
-- then goes through the whole policy. Its first value may come after start, so
-- `startup` defaults to "wait" (give `startup = "default"` not to wait). opts: limits.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

function M.constructors.push(opts)
  if opts ~= nil and type(opts) ~= "table" then
    base.argerror(1, "push", "options table expected")
  end
  opts = opts or {}
  base.check_options("push", opts, { limits = true })
  return base.make("push", { limits = opts.limits })
end

function M.normalize(src, out, h)
  out.limits = h.limits(src.limits, h.locate("limits"))
  out.target = "rc_engine_push"
end

return M
