-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.etcd: rc.etcd { endpoints = { "http://127.0.0.1:2379", ... } (or one
-- string), key | prefix, format = "json", token_env | token_file (a ready token) or
-- user + password_env (authenticated, refreshed when etcd says the token is invalid),
-- timeout = "10s" (each unary call), poll = "1s" | false (range reads while the watch
-- fails), page = 500 | false (keys per range request of a prefix, all at one revision),
-- and the options of every remote source }: etcd v3 through its JSON gateway.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

local OPTIONS = base.with_remote_options { endpoints = true, key = true, prefix = true,
  format = true, user = true, password_env = true, poll = true, page = true }

function M.constructors.etcd(opts)
  if type(opts) == "string" then opts = { key = opts } end
  base.check_options("etcd", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("etcd", spec)
end

function M.normalize(src, out, h)
  local eps = src.endpoints or "http://127.0.0.1:2379"
  if type(eps) == "string" then eps = { eps } end
  if type(eps) ~= "table" or #eps == 0 then
    h.fail("'endpoints' must be a URL or a non-empty list of URLs")
  end
  local list = {}
  for k in pairs(eps) do
    if math.type(k) ~= "integer" or k < 1 or k > #eps then
      h.fail("'endpoints' must be a list of URLs, found the key %s", tostring(k))
    end
  end
  for i, ep in ipairs(eps) do
    if type(ep) ~= "string" then h.fail("endpoints[%d] must be a string", i) end
    ep = ep:gsub("/+$", "")
    base.check_url(h, ep, ("endpoints[%d]"):format(i))
    list[i] = ep
  end
  out.endpoints = list
  local key, prefix = base.str(h, src, "key"), src.prefix
  if prefix ~= nil and type(prefix) ~= "string" then
    h.fail("'prefix' must be a string")
  end
  if (key == nil) == (prefix == nil) then
    h.fail("give exactly one of 'key' or 'prefix'")
  end
  -- `key` is the loader's name for the source identity: the etcd key travels as
  -- `etcd_key`. A prefix "" means every key.
  out.etcd_key, out.prefix = key, prefix
  out.target = base.display_url(list[1]) .. " " .. (key or (prefix .. "*"))
  out.format = base.format(h, src) or "json"
  out.user = base.str(h, src, "user")
  out.password_env = base.str(h, src, "password_env")
  if (out.user == nil) ~= (out.password_env == nil) then
    h.fail("give 'user' and 'password_env' together")
  end
  base.hybrid_poll(h, src, out)
  -- page = 500 (the default) or false: a prefix is read this many keys per request.
  local page = src.page
  if page == false then
    out.page = 0
  elseif page ~= nil then
    if math.type(page) ~= "integer" or page < 1 or page > 1000000 then
      h.fail("'page' must be a number of keys from 1 to 1000000, or false")
    end
    out.page = page
  end
  base.remote_options(h, src, out)
  if out.user and (out.token_env or out.token_file) then
    h.fail("give either 'user' + 'password_env' or a token, not both")
  end
  if out.timeout_ms < 1 then h.fail("timeout must be at least 1ms") end
end

return M
