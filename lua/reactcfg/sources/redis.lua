-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.redis: rc.redis { addr = "redis://[user[:password]@]host:6379/0",
-- key = "app:config" | hash = "app:flags" | prefix = "app:cfg:", password_env |
-- password_file, format, interval = "1s" (polling when keyspace notifications are off),
-- ttl (absent after this long without a fresh read), timeout, max_bytes, limits, backoff,
-- circuit }: a Redis string, hash or key prefix followed by keyspace notifications.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

-- No token_env/token_file (the secret is a password), no ca_file/insecure (Debian's
-- hiredis 0.14 has no TLS).
local OPTIONS = { addr = true, key = true, hash = true, prefix = true,
  password_env = true, password_file = true, format = true, interval = true, ttl = true,
  timeout = true, max_bytes = true, limits = true, backoff = true, circuit = true }

function M.constructors.redis(opts)
  if type(opts) == "string" then opts = { key = opts } end
  base.check_options("redis", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("redis", spec)
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- redis://[user[:password]@]host[:port][/db] -> host, port, db, user, password.
local function parse_addr(h, addr)
  if addr:match("^rediss://") then
    h.fail("TLS (rediss://) is not supported: Debian's hiredis 0.14 has no TLS")
  end
  local rest = addr:match("^redis://(.+)$")
  if not rest then
    h.fail("addr must be a redis:// URL such as \"redis://127.0.0.1:6379/0\", got %q",
      base.display_url(addr))
  end
  if rest:find("[%s?#]") then h.fail("addr must not contain spaces, '?' or '#'") end
  local userinfo, hostpart = rest:match("^(.*)@([^@]*)$")
  if not userinfo then hostpart = rest end
  local user, password
  if userinfo then
    user, password = userinfo:match("^([^:]*):(.*)$")
    if not user then user = userinfo end
    user = user ~= "" and unescape(user) or nil
    password = password and unescape(password) or nil
  end
  local hostport, db = hostpart:match("^([^/]*)/?(.*)$")
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([%w.-]+):?(%d*)$") end
  if not host or host == "" then
    h.fail("addr has no host: %q", base.display_url(addr))
  end
  port = port ~= "" and tonumber(port) or 6379
  if port < 1 or port > 65535 then h.fail("addr: port %d is out of range", port) end
  db = db:gsub("/+$", "")
  if db ~= "" and not db:match("^%d+$") then
    h.fail("addr: the database must be a number, got %q", db)
  end
  return host, port, db ~= "" and tonumber(db) or 0, user, password
end

function M.normalize(src, out, h)
  local addr = base.str(h, src, "addr") or "redis://127.0.0.1:6379/0"
  local host, port, db, user, password = parse_addr(h, addr)
  out.host, out.port, out.db, out.user = host, port, db, user
  -- A password in the URL is accepted but never shown: `target` and messages leave it
  -- out; `password_env`/`password_file` keep it out of the policy altogether.
  out.password = password
  local n = 0
  for _, k in ipairs { "key", "hash", "prefix" } do
    if src[k] ~= nil then
      n = n + 1
      if type(src[k]) ~= "string" then h.fail("'%s' must be a string", k) end
      if k ~= "prefix" and src[k] == "" then h.fail("'%s' must not be empty", k) end
      if src[k]:find("%z") then h.fail("'%s' must not contain a NUL byte", k) end
    end
  end
  if n ~= 1 then h.fail("give exactly one of 'key', 'hash' or 'prefix'") end
  -- `key` is the loader's name for the source identity: the Redis key travels as
  -- `redis_key`.
  out.redis_key, out.hash, out.prefix = src.key, src.hash, src.prefix
  local shown = ("redis://%s:%d/%d"):format(host:find(":") and "[" .. host .. "]" or host,
    port, db)
  out.target = shown .. " " .. (src.key or src.prefix and src.prefix .. "*"
    or src.hash .. " (hash)")
  -- Strings are parsed in `format`; a hash's fields are text unless it says otherwise.
  out.format = base.format(h, src) or (src.hash and "text" or "json")
  out.poll_ms = src.interval ~= nil and h.duration(src.interval, "interval")
    or h.default("poll_ms")
  if out.poll_ms < 10 then h.fail("interval must be at least 10ms") end
  if src.ttl ~= nil then
    out.ttl_ms = h.duration(src.ttl, "ttl")
    if out.ttl_ms < 10 then h.fail("ttl must be at least 10ms") end
  end
  base.remote_options(h, src, out)
  if out.timeout_ms < 1 then h.fail("timeout must be at least 1ms") end
  base.password_options(h, src, out)
  if password and (out.token_env or out.token_file) then
    h.fail("give the password in addr or in password_env/password_file, not both")
  end
end

return M
