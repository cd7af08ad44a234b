-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.http: rc.http { url, interval = "1s", headers = {...}, format,
-- http_version = "1.1" | "2", timeout = "5s", max_bytes, ca_file, insecure,
-- token_env | token_file, backoff = { min, max }, circuit, limits }: a URL polled with
-- conditional GETs.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

local OPTIONS = base.with_remote_options { url = true, interval = true, headers = true,
  format = true, http_version = true }

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
  -- HTTP/1.1 by default: for a poller it costs less CPU per request than HTTP/2 with
  -- Debian's libcurl (README Benchmarks (e)); "2" shares one connection per server.
  local v = src.http_version
  if v == nil then v = "1.1" end
  if v ~= "1.1" and v ~= "2" then
    h.fail("http_version must be \"1.1\" or \"2\" (a string), got %s", tostring(v))
  end
  out.http_version = v
  base.remote_options(h, src, out)
end

return M
