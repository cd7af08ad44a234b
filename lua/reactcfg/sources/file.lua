-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.file: rc.file(path [, opts]), the contents of a local file parsed by
-- format (its extension, or opts.format). Options: format, settle (how long writes must
-- pause before a file modified without being closed is read), missing_grace (how long a
-- vanished file may stay away before it counts as removed: the middle of a save),
-- limits, poll (the interval of the fallback polling used while inotify is unavailable).

local base = require "reactcfg.source_base"

local M = { constructors = {} }

local OPTIONS = { path = true, format = true, settle = true, missing_grace = true,
  limits = true, poll = true }

function M.constructors.file(path, opts)
  if type(path) == "table" and opts == nil then
    opts, path = path, path.path
  end
  if type(path) ~= "string" or path == "" then
    base.argerror(1, "file", "a file path (string) expected, got " .. type(path))
  end
  opts = opts or {}
  if type(opts) ~= "table" then base.argerror(2, "file", "options table expected") end
  base.check_options("file", opts, OPTIONS)
  return base.make("file", { path = path, format = opts.format, limits = opts.limits,
    settle = opts.settle, missing_grace = opts.missing_grace, poll = opts.poll })
end

function M.normalize(src, out, h)
  local path = src.path
  if path:sub(1, 1) ~= "/" then path = h.basedir .. "/" .. path end
  out.path = path
  out.target = path
  out.settle_ms = src.settle and h.duration(src.settle, "settle") or h.default("settle_ms")
  out.missing_grace_ms = src.missing_grace and h.duration(src.missing_grace, "missing_grace")
    or h.default("missing_grace_ms")
  out.poll_ms = src.poll and h.duration(src.poll, "poll") or h.default("poll_ms")
  if out.poll_ms < 10 then h.component_fail("poll must be at least 10ms") end
  out.format = src.format
  out.limits = h.limits(src.limits, h.locate("limits"))
  if out.format ~= nil and not base.FORMATS[out.format] then
    h.component_fail_at(h.locate("format"), "unknown format '%s' (expected %s)",
      tostring(out.format), base.FORMAT_LIST)
  end
end

return M
