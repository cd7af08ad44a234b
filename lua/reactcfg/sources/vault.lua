-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.vault: rc.vault { addr = "http://127.0.0.1:8200", mount = "secret",
-- path, token_env | token_file (default token_env = "VAULT_TOKEN"), interval = "30s",
-- renew = true, lease = false, and the options of every remote source }: a KV v2 secret
-- (or, with lease = true, a dynamic secret whose lease is renewed). Secret by default.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

local OPTIONS = base.with_remote_options { addr = true, mount = true, path = true,
  interval = true, renew = true, lease = true }

function M.constructors.vault(opts)
  if type(opts) == "string" then opts = { path = opts } end
  base.check_options("vault", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("vault", spec)
end

function M.normalize(src, out, h)
  out.addr = (base.str(h, src, "addr") or "http://127.0.0.1:8200"):gsub("/+$", "")
  base.check_url(h, out.addr, "addr")
  out.mount = (base.str(h, src, "mount") or "secret"):gsub("^/+", ""):gsub("/+$", "")
  out.path = base.str(h, src, "path", true):gsub("^/+", "")
  if out.path == "" then h.fail("'path' must name a secret") end
  out.target = base.display_url(out.addr) .. "/v1/" .. out.mount .. "/" .. out.path
  out.interval_ms = src.interval ~= nil and h.duration(src.interval, "interval")
    or h.default("interval_ms")
  if out.interval_ms < 1 then h.fail("interval must be at least 1ms") end
  if src.renew ~= nil and type(src.renew) ~= "boolean" then
    h.fail("'renew' must be true or false")
  end
  out.renew = src.renew ~= false
  -- lease = true: `path` is a dynamic secret (database/creds/app): read as it is, its
  -- lease renewed before expiry, new credentials read before the lease's max TTL.
  if src.lease ~= nil and type(src.lease) ~= "boolean" then
    h.fail("'lease' must be true or false")
  end
  out.lease = src.lease == true
  base.remote_options(h, src, out)
  if not out.token_env and not out.token_file then out.token_env = "VAULT_TOKEN" end
  -- Values from Vault are secret unless the component says `secret = false`.
  out.secret_default = true
end

return M
