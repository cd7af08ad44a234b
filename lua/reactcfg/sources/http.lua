-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.http: rc.http { url, interval = "1s", headers = {...}, format,
-- timeout = "5s", max_bytes, ca_file, insecure, token_env | token_file,
-- backoff = { min, max }, circuit, limits }: a URL polled with conditional GETs.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

local OPTIONS = base.with_remote_options { url = true, interval = true, headers = true,
  format = true }

function M.constructors.http(opts)
  if type(opts) == "string" then opts = { url = opts } end
  base.check_options("http", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("http", spec)
end

function M.normalize(src, out, h)
  out.url = base.str(h, src, "url", true)
  base.check_url(h, out.url, "url")
  out.target = base.display_url(out.url)
  out.interval_ms = src.interval ~= nil and h.duration(src.interval, "interval")
    or h.default("interval_ms")
  if out.interval_ms < 1 then h.fail("interval must be at least 1ms") end
  out.format = base.format(h, src)
  out.headers = base.headers(h, src)
  base.remote_options(h, src, out)
end

return M
