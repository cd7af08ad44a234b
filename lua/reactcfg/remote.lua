-- reactcfg.remote: the remote source constructors (rc.http, rc.consul, rc.vault,
-- rc.etcd) and `normalize`, which the loader calls to check their options and turn them
-- into the flat description the C sources read (durations in ms, paths made absolute).
-- Tokens and passwords are never part of a description: only where to read them
-- (token_env, token_file, password_env).

local M = {}

local SOURCE, caller_line   -- set by bind (init.lua owns the source metatable)

--- bind(SOURCE, caller_line): called once by reactcfg's init.
function M.bind(source_mt, line_fn)
  SOURCE, caller_line = source_mt, line_fn
end

-- Raises at the policy line that called the constructor (level 3: the constructor's
-- caller, as this helper runs inside the constructor).
local function check_options(fname, opts, allowed)
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (options table expected, got %s)")
      :format(fname, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      local list = {}
      for a in pairs(allowed) do list[#list + 1] = a end
      table.sort(list)
      error(("%s: unknown option '%s' (expected one of: %s)")
        :format(fname, tostring(k), table.concat(list, ", ")), 3)
    end
  end
end

local COMMON = { token_env = true, token_file = true, timeout = true, max_bytes = true,
  ca_file = true, insecure = true, backoff = true, limits = true, circuit = true }

local function with_common(t)
  for k in pairs(COMMON) do t[k] = true end
  return t
end

local HTTP_OPTS = with_common { url = true, interval = true, headers = true, format = true }
local CONSUL_OPTS = with_common { addr = true, key = true, prefix = true, wait = true,
  consistency = true, max_stale = true, format = true, rate_limit = true, poll = true }
local VAULT_OPTS = with_common { addr = true, mount = true, path = true, interval = true,
  renew = true, lease = true }
local ETCD_OPTS = with_common { endpoints = true, key = true, prefix = true,
  format = true, user = true, password_env = true, poll = true, page = true }

local function make(kind, opts)
  local spec = { kind = kind }
  for k, v in pairs(opts) do spec[k] = v end
  spec.line = caller_line and caller_line()
  return setmetatable(spec, SOURCE)
end

--- rc.http { url, interval = "1s", headers = {...}, format, timeout = "5s", max_bytes,
--- ca_file, insecure, token_env | token_file, backoff = { min, max }, limits }
function M.http(opts)
  if type(opts) == "string" then opts = { url = opts } end
  check_options("http", opts, HTTP_OPTS)
  return make("http", opts)
end

--- rc.consul { addr = "http://127.0.0.1:8500", key | prefix, token_env | token_file,
--- wait = "5m", consistency = "stale" | "consistent" (max_stale = "2s"), format = "json",
--- rate_limit = "250ms", poll = "1s" | false (plain GETs while blocking queries fail) }
function M.consul(opts)
  if type(opts) == "string" then opts = { key = opts } end
  check_options("consul", opts, CONSUL_OPTS)
  return make("consul", opts)
end

--- rc.vault { addr = "http://127.0.0.1:8200", mount = "secret", path, token_env |
--- token_file (default token_env = "VAULT_TOKEN"), interval = "30s", renew = true }
function M.vault(opts)
  if type(opts) == "string" then opts = { path = opts } end
  check_options("vault", opts, VAULT_OPTS)
  return make("vault", opts)
end

--- rc.etcd { endpoints = { "http://127.0.0.1:2379", ... } (or one string), key | prefix,
--- format = "json", token_env | token_file (a ready token) or user + password_env
--- (authenticated, refreshed when etcd says the token is invalid), timeout = "10s" (each
--- unary call), and the common backoff, circuit, max_bytes (a range, a watch message),
--- ca_file, insecure, limits; poll = "1s" | false (range reads while the watch fails);
--- page = 500 | false (keys per range request of a prefix, all at one revision) }
function M.etcd(opts)
  if type(opts) == "string" then opts = { key = opts } end
  check_options("etcd", opts, ETCD_OPTS)
  return make("etcd", opts)
end

-- ---- normalize ----------------------------------------------------------------------

local function str(h, src, k, required)
  local v = src[k]
  if v == nil then
    if required then h.fail("'%s' is required", k) end
    return nil
  end
  if type(v) ~= "string" or v == "" then
    h.fail("'%s' must be a non-empty string, got %s", k, type(v) == "string" and '""'
      or type(v))
  end
  return v
end

local function abs_path(h, p)
  if p and p:sub(1, 1) ~= "/" then return h.basedir .. "/" .. p end
  return p
end

local function check_url(h, url, what)
  if not url:match("^https?://[^/?#]+") then
    h.fail("%s must be an http:// or https:// URL, got %q", what, url)
  end
  if url:find("[%s]") then h.fail("%s must not contain spaces", what) end
end

-- Options every remote source has.
local function common(h, src, out, timeout_dflt)
  out.token_env = str(h, src, "token_env")
  out.token_file = abs_path(h, str(h, src, "token_file"))
  if out.token_env and out.token_file then
    h.fail("give at most one of 'token_env' and 'token_file'")
  end
  out.ca_file = abs_path(h, str(h, src, "ca_file"))
  if src.insecure ~= nil and type(src.insecure) ~= "boolean" then
    h.fail("'insecure' must be true or false")
  end
  out.insecure = src.insecure == true
  out.timeout_ms = src.timeout ~= nil and h.duration(src.timeout, "timeout") or timeout_dflt
  if src.max_bytes ~= nil then
    out.max_bytes = h.limits({ max_bytes = src.max_bytes }).max_bytes
  end
  out.limits = h.limits(src.limits)
  if src.backoff ~= nil then
    if type(src.backoff) ~= "table" then
      h.fail("'backoff' must be a table { min = \"1s\", max = \"1m\" }")
    end
    for k in pairs(src.backoff) do
      if k ~= "min" and k ~= "max" then
        h.fail("backoff: unknown key '%s' (expected min, max)", tostring(k))
      end
    end
    out.backoff_min_ms = src.backoff.min and h.duration(src.backoff.min, "backoff.min")
    out.backoff_max_ms = src.backoff.max and h.duration(src.backoff.max, "backoff.max")
    if (out.backoff_min_ms or 1000) < 1 then h.fail("backoff.min must be at least 1ms") end
    if out.backoff_max_ms and out.backoff_max_ms < (out.backoff_min_ms or 1000) then
      h.fail("backoff.max is shorter than backoff.min")
    end
  end
  -- circuit = { failures = 5, cooldown = "30s" } (the default) or false: after that many
  -- failures in a row, no request for `cooldown`; then one probe.
  local circuit = src.circuit
  if circuit == false then
    out.circuit_failures = 0
  elseif circuit ~= nil then
    if type(circuit) ~= "table" then
      h.fail("'circuit' must be false or { failures = 5, cooldown = \"30s\" }")
    end
    for k in pairs(circuit) do
      if k ~= "failures" and k ~= "cooldown" then
        h.fail("circuit: unknown key '%s' (expected failures, cooldown)", tostring(k))
      end
    end
    local n = circuit.failures
    if n ~= nil and (math.type(n) ~= "integer" or n < 1) then
      h.fail("circuit.failures must be a positive integer")
    end
    out.circuit_failures = n
    out.circuit_cooldown_ms = circuit.cooldown
      and h.duration(circuit.cooldown, "circuit.cooldown")
  end
end

-- poll = "1s" (the default) or false: the interval of the fallback polling used while
-- the realtime way (blocking queries, a watch stream) fails where plain reads work;
-- false turns the fallback off (poll_ms = 0).
local function poll(h, src, out)
  local p = src.poll
  if p == false then
    out.poll_ms = 0
    return
  end
  if p ~= nil and type(p) ~= "string" and type(p) ~= "number" then
    h.fail("'poll' must be a duration such as \"1s\" or false, got %s", type(p))
  end
  out.poll_ms = p ~= nil and h.duration(p, "poll") or 1000
  if out.poll_ms < 10 then h.fail("poll must be at least 10ms") end
end

local FORMATS = { json = true, yaml = true, yml = true, toml = true, dotenv = true,
  env = true, text = true }

local function format(h, src)
  local f = src.format
  if f ~= nil and not FORMATS[f] then
    h.fail("unknown format '%s' (expected json, yaml, toml, dotenv, text)", tostring(f))
  end
  return f
end

local function http(src, out, h)
  out.url = str(h, src, "url", true)
  check_url(h, out.url, "url")
  out.interval_ms = src.interval ~= nil and h.duration(src.interval, "interval") or 1000
  if out.interval_ms < 1 then h.fail("interval must be at least 1ms") end
  out.format = format(h, src)
  if src.headers ~= nil then
    if type(src.headers) ~= "table" then
      h.fail("'headers' must be a table of name = value strings")
    end
    local headers = {}
    for k, v in pairs(src.headers) do
      if type(k) ~= "string" or not k:match("^[%w!#$%%&'*+%-.^_`|~]+$") then
        h.fail("headers: invalid header name %s", tostring(k))
      end
      if type(v) ~= "string" or v:find("[\r\n]") then
        h.fail("headers: the value of '%s' must be a string on one line", k)
      end
      headers[k] = v
    end
    local n = 0
    for _ in pairs(headers) do n = n + 1 end
    if n > 32 then h.fail("at most 32 headers") end
    if n > 0 then out.headers = headers end
  end
  common(h, src, out, 5000)
end

-- Consul refuses some keys with a 400 (>= 1.21.5): catch them before any request.
local function check_consul_key(h, key, what)
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

local function consul(src, out, h)
  out.addr = (str(h, src, "addr") or "http://127.0.0.1:8500"):gsub("/+$", "")
  check_url(h, out.addr, "addr")
  local key, prefix = str(h, src, "key"), src.prefix
  if prefix ~= nil and type(prefix) ~= "string" then h.fail("'prefix' must be a string") end
  if (key == nil) == (prefix == nil) then
    h.fail("give exactly one of 'key' or 'prefix'")
  end
  if key then check_consul_key(h, key, "key") end
  if prefix and prefix ~= "" then check_consul_key(h, prefix, "prefix") end
  -- `key` is the loader's name for the source identity: the Consul key travels as
  -- `consul_key`.
  out.consul_key, out.prefix = key, prefix
  out.wait_ms = src.wait ~= nil and h.duration(src.wait, "wait") or 300000
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
  out.format = format(h, src) or "json"
  out.rate_limit_ms = src.rate_limit ~= nil and h.duration(src.rate_limit, "rate_limit")
    or 250
  poll(h, src, out)
  common(h, src, out, 10000)
end

local function vault(src, out, h)
  out.addr = (str(h, src, "addr") or "http://127.0.0.1:8200"):gsub("/+$", "")
  check_url(h, out.addr, "addr")
  out.mount = (str(h, src, "mount") or "secret"):gsub("^/+", ""):gsub("/+$", "")
  out.path = str(h, src, "path", true):gsub("^/+", "")
  if out.path == "" then h.fail("'path' must name a secret") end
  out.interval_ms = src.interval ~= nil and h.duration(src.interval, "interval") or 30000
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
  common(h, src, out, 10000)
  if not out.token_env and not out.token_file then out.token_env = "VAULT_TOKEN" end
  -- Values from Vault are secret unless the component says `secret = false`.
  out.secret_default = true
end

local function etcd(src, out, h)
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
    check_url(h, ep, ("endpoints[%d]"):format(i))
    list[i] = ep
  end
  out.endpoints = list
  local key, prefix = str(h, src, "key"), src.prefix
  if prefix ~= nil and type(prefix) ~= "string" then
    h.fail("'prefix' must be a string")
  end
  if (key == nil) == (prefix == nil) then
    h.fail("give exactly one of 'key' or 'prefix'")
  end
  -- `key` is the loader's name for the source identity: the etcd key travels as
  -- `etcd_key`. A prefix "" means every key.
  out.etcd_key, out.prefix = key, prefix
  out.format = format(h, src) or "json"
  out.user = str(h, src, "user")
  out.password_env = str(h, src, "password_env")
  if (out.user == nil) ~= (out.password_env == nil) then
    h.fail("give 'user' and 'password_env' together")
  end
  poll(h, src, out)
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
  common(h, src, out, 10000)
  if out.user and (out.token_env or out.token_file) then
    h.fail("give either 'user' + 'password_env' or a token, not both")
  end
  if out.timeout_ms < 1 then h.fail("timeout must be at least 1ms") end
end

local KINDS = { http = http, consul = consul, vault = vault, etcd = etcd }

--- normalize(src, out, helpers): checks src's options and fills `out` (see loader.lua).
function M.normalize(src, out, h)
  local fn = KINDS[src.kind]
  if not fn then h.fail("this source kind is not supported yet") end
  fn(src, out, h)
end

return M
