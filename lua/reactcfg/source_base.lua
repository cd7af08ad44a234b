-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.source_base: what the Lua halves of the source kinds share: the metatable
-- that marks a source description, the policy line that declared it, option checks for
-- the constructors, and the checks their normalizers reuse (strings, paths, URLs,
-- formats, the options of every remote source).

local M = {}

-- Line of the policy code that called a vocabulary function, so that load errors can
-- point at the declaration: the first frame that is not ours.
local getinfo = debug and debug.getinfo
function M.caller_line()
  if not getinfo then return nil end
  for level = 3, 7 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and not info.source:find("^@lua/reactcfg/") then
      return info.currentline
    end
  end
  return nil
end

local SOURCE = {}   -- metatable marking a source description
SOURCE.__name = "reactcfg.source"
SOURCE.__metatable = "reactcfg.source"
SOURCE.__tostring = function(s)
  return ("%s(%s)"):format(s.kind, s.path or s.name or s.prefix or s.url or s.key
    or s.hash or (type(rawget(s, "fn")) == "function" and "function") or "?")
end
M.SOURCE = SOURCE

function M.is_source(v)
  return getmetatable(v) == "reactcfg.source"
end

--- make(kind, spec): spec (a fresh table) marked as a source of `kind`, with its line.
function M.make(kind, spec)
  spec.kind = kind
  spec.line = M.caller_line()
  return setmetatable(spec, SOURCE)
end

-- Raises at the policy line that called the constructor (level 3: the constructor's
-- caller, as this helper runs inside the constructor).
function M.argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

--- check_options(fname, opts, allowed [, list]): raises for a key not in `allowed`;
--- with `list`, the message names the allowed keys.
function M.check_options(fname, opts, allowed, list)
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (options table expected, got %s)")
      :format(fname, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      local expected = ""
      if list then
        local names = {}
        for a in pairs(allowed) do names[#names + 1] = a end
        table.sort(names)
        expected = (" (expected one of: %s)"):format(table.concat(names, ", "))
      end
      error(("%s: unknown option '%s'%s"):format(fname, tostring(k), expected), 3)
    end
  end
end

-- The formats a source or a component may name.
M.FORMATS = { json = true, yaml = true, yml = true, toml = true, dotenv = true,
  env = true, text = true }
M.FORMAT_LIST = "json, yaml, toml, dotenv, text"

-- ---- checks for the normalizers (h: the loader's helpers, see loader.lua) ----------

function M.str(h, src, k, required)
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

function M.abs_path(h, p)
  if p and p:sub(1, 1) ~= "/" then return h.basedir .. "/" .. p end
  return p
end

function M.check_url(h, url, what)
  if not url:match("^https?://[^/?#]+") then
    h.fail("%s must be an http:// or https:// URL, got %q", what, url)
  end
  if url:find("[%s]") then h.fail("%s must not contain spaces", what) end
end

--- A URL as it may be shown (status, events): without user:password@.
function M.display_url(url)
  return (url:gsub("^(%a[%w+.-]*://)[^/@]*@", "%1"))
end

function M.format(h, src)
  local f = src.format
  if f ~= nil and not M.FORMATS[f] then
    h.fail("unknown format '%s' (expected %s)", tostring(f), M.FORMAT_LIST)
  end
  return f
end

--- headers(h, src, reserved): the `headers` option, { name = "value", ... }, checked:
--- names are HTTP tokens (none of `reserved`, lowercase names the source sets itself),
--- values strings without control characters but the tab, at most 32. Nil when absent or
--- empty.
function M.headers(h, src, reserved)
  if src.headers == nil then return nil end
  if type(src.headers) ~= "table" then
    h.fail("'headers' must be a table of name = value strings")
  end
  local headers, n = {}, 0
  for k, v in pairs(src.headers) do
    if type(k) ~= "string" or not k:match("^[%w!#$%%&'*+%-.^_`|~]+$") then
      h.fail("headers: invalid header name %s", tostring(k))
    end
    if reserved and reserved[k:lower()] then
      h.fail("headers: '%s' is set by the source itself", k)
    end
    -- Control characters but the tab end a line or a C string (RFC 9110 5.5).
    if type(v) ~= "string" or v:find("[%z\1-\8\10-\31\127]") then
      h.fail("headers: the value of '%s' must be a string on one line", k)
    end
    headers[k] = v
    n = n + 1
  end
  if n > 32 then h.fail("at most 32 headers") end
  return n > 0 and headers or nil
end

-- The options every remote source has: token_env | token_file, ca_file, insecure,
-- timeout, max_bytes, limits, backoff = { min, max }, circuit = { failures, cooldown }
-- or false. Defaults come from the kind (C), through h.default.
M.REMOTE_OPTIONS = { token_env = true, token_file = true, timeout = true,
  max_bytes = true, ca_file = true, insecure = true, backoff = true, limits = true,
  circuit = true }

function M.with_remote_options(t)
  for k in pairs(M.REMOTE_OPTIONS) do t[k] = true end
  return t
end

function M.remote_options(h, src, out)
  out.token_env = M.str(h, src, "token_env")
  out.token_file = M.abs_path(h, M.str(h, src, "token_file"))
  if out.token_env and out.token_file then
    h.fail("give at most one of 'token_env' and 'token_file'")
  end
  out.ca_file = M.abs_path(h, M.str(h, src, "ca_file"))
  if src.insecure ~= nil and type(src.insecure) ~= "boolean" then
    h.fail("'insecure' must be true or false")
  end
  out.insecure = src.insecure == true
  out.timeout_ms = src.timeout ~= nil and h.duration(src.timeout, "timeout")
    or h.default("timeout_ms")
  if src.max_bytes ~= nil then
    out.max_bytes = h.limits({ max_bytes = src.max_bytes }).max_bytes
  end
  out.limits = h.limits(src.limits)
  if src.backoff ~= nil then
    if type(src.backoff) ~= "table" then
      h.fail("'backoff' must be a table { min = \"1s\", max = \"5s\" }")
    end
    for k in pairs(src.backoff) do
      if k ~= "min" and k ~= "max" then
        h.fail("backoff: unknown key '%s' (expected min, max)", tostring(k))
      end
    end
    out.backoff_min_ms = src.backoff.min and h.duration(src.backoff.min, "backoff.min")
    out.backoff_max_ms = src.backoff.max and h.duration(src.backoff.max, "backoff.max")
    local min = out.backoff_min_ms or h.default("backoff_min_ms")
    if min < 1 then h.fail("backoff.min must be at least 1ms") end
    if out.backoff_max_ms and out.backoff_max_ms < min then
      h.fail("backoff.max is shorter than backoff.min")
    end
  end
  -- circuit = { failures = 5, cooldown = "5s" } (the defaults) or false: after that many
  -- failures in a row, no request for `cooldown`; then one probe.
  local circuit = src.circuit
  if circuit == false then
    out.circuit_failures = 0
  elseif circuit ~= nil then
    if type(circuit) ~= "table" then
      h.fail("'circuit' must be false or { failures = 5, cooldown = \"5s\" }")
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
--- password_env | password_file: a secret the driver reads when it connects (it travels
--- as the driver's token, never in the description), for kinds whose servers take a
--- password rather than a bearer token.
function M.password_options(h, src, out)
  out.token_env = M.str(h, src, "password_env")
  out.token_file = M.abs_path(h, M.str(h, src, "password_file"))
  if out.token_env and out.token_file then
    h.fail("give at most one of 'password_env' and 'password_file'")
  end
end

function M.hybrid_poll(h, src, out)
  local p = src.poll
  if p == false then
    out.poll_ms = 0
    return
  end
  if p ~= nil and type(p) ~= "string" and type(p) ~= "number" then
    h.fail("'poll' must be a duration such as \"1s\" or false, got %s", type(p))
  end
  out.poll_ms = p ~= nil and h.duration(p, "poll") or h.default("poll_ms")
  if out.poll_ms < 10 then h.fail("poll must be at least 10ms") end
end

return M
