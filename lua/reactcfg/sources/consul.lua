-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.consul: rc.consul { addr = "http://127.0.0.1:8500", key | prefix,
-- token_env | token_file, wait = "5m", consistency = "stale" | "consistent"
-- (max_stale = "2s"), format = "json", rate_limit = "250ms", poll = "1s" | false (plain
-- GETs while blocking queries fail), and the options of every remote source }: Consul's
-- KV store followed with blocking queries.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

local OPTIONS = base.with_remote_options { addr = true, key = true, prefix = true,
  wait = true, consistency = true, max_stale = true, format = true, rate_limit = true,
  poll = true }

function M.constructors.consul(opts)
  if type(opts) == "string" then opts = { key = opts } end
  base.check_options("consul", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("consul", spec)
end

-- Consul refuses some keys with a 400 (>= 1.21.5): catch them before any request.
local function check_key(h, key, what)
  if key:sub(1, 1) == "/" then h.fail("%s must not begin with '/'", what) end
  if key:match("^%s") or key:match("%s$") then
    h.fail("%s must not begin or end with whitespace", what)
  end
  for seg in (key .. "/"):gmatch("([^/]*)/") do
    if seg == ".." or seg == "." then
      h.fail("%s must not contain '.' or '..' segments", what)
    end
  end
end

function M.normalize(src, out, h)
  out.addr = (base.str(h, src, "addr") or "http://127.0.0.1:8500"):gsub("/+$", "")
  base.check_url(h, out.addr, "addr")
  local key, prefix = base.str(h, src, "key"), src.prefix
  if prefix ~= nil and type(prefix) ~= "string" then h.fail("'prefix' must be a string") end
  if (key == nil) == (prefix == nil) then
    h.fail("give exactly one of 'key' or 'prefix'")
  end
  if key then check_key(h, key, "key") end
  if prefix and prefix ~= "" then check_key(h, prefix, "prefix") end
  -- `key` is the loader's name for the source identity: the Consul key travels as
  -- `consul_key`.
  out.consul_key, out.prefix = key, prefix
  out.target = base.display_url(out.addr) .. "/v1/kv/" .. (key or (prefix .. "*"))
  out.wait_ms = src.wait ~= nil and h.duration(src.wait, "wait") or h.default("wait_ms")
  if out.wait_ms < 1000 then h.fail("wait must be at least 1s") end
  if out.wait_ms > 600000 then h.fail("wait must be at most 10m (Consul's cap)") end
  local c = src.consistency
  if c ~= nil and c ~= "stale" and c ~= "consistent" and c ~= "default" then
    h.fail("consistency must be \"stale\", \"consistent\" or \"default\", got %s",
      tostring(c))
  end
  out.consistency = c ~= "default" and c or nil
  if src.max_stale ~= nil then
    if out.consistency ~= "stale" then
      h.fail("max_stale applies only to consistency = \"stale\"")
    end
    out.max_stale_ms = h.duration(src.max_stale, "max_stale")
  end
  out.format = base.format(h, src) or "json"
  out.rate_limit_ms = src.rate_limit ~= nil and h.duration(src.rate_limit, "rate_limit")
    or h.default("rate_limit_ms")
  base.hybrid_poll(h, src, out)
  base.remote_options(h, src, out)
end

return M
