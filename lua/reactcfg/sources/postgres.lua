-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.postgres: rc.postgres { conninfo_env = "APP_PG" | conninfo_file |
-- conninfo (without a password), query = "SELECT key, value FROM settings WHERE app = $1",
-- params = { "billing" }, listen = "settings_changed", interval = "10s",
-- timeout = "10s" (the statement timeout), and the retry, limit and size options of
-- every remote source }: a query's result, run again on each NOTIFY and every interval.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

-- The remote options that apply: no tokens or TLS files here (TLS and credentials
-- belong to the connection string: sslmode, sslrootcert, password, passfile).
local OPTIONS = { conninfo = true, conninfo_env = true, conninfo_file = true,
  query = true, params = true, listen = true, interval = true, timeout = true,
  max_bytes = true, limits = true, backoff = true, circuit = true }

function M.constructors.postgres(opts)
  base.check_options("postgres", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("postgres", spec)
end

local function unescape_uri(s)
  return (s:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

-- The fields of a connection string that name what it reaches (and whether it holds a
-- password): libpq's key = 'value' form or a postgres[ql]:// URI. Only for showing and
-- for the password check; libpq parses it for real. nil when it does not read.
local function fields(ci)
  local f = {}
  local uri = ci:match("^postgres[a-z]*://(.*)$")
  if uri then
    local main, query = uri:match("^([^?]*)%??(.*)$")
    local auth, rest = main:match("^([^@/]*)@(.*)$")
    if auth then
      f.user = unescape_uri(auth:match("^[^:]*"))
      f.password = auth:find(":", 1, true) ~= nil or nil
    end
    local hosts, db = (rest or main):match("^([^/]*)/?(.*)$")
    if hosts ~= "" then f.host = unescape_uri(hosts) end
    if db ~= "" then f.dbname = unescape_uri(db) end
    for k, v in query:gmatch("([^&=]+)=([^&]*)") do
      if k == "password" then f.password = true
      elseif f[k] == nil then f[k] = unescape_uri(v) end
    end
    return f
  end
  local i = 1
  while true do
    i = ci:find("%S", i)
    if not i then return f end
    local k, j = ci:match("^([%w_]+)%s*=%s*()", i)
    if not k then return nil end
    local v
    if ci:sub(j, j) == "'" then
      local parts, p = {}, j + 1
      while true do
        local c = ci:sub(p, p)
        if c == "" then return nil end
        if c == "'" then break end
        if c == "\\" then p = p + 1; c = ci:sub(p, p) end
        parts[#parts + 1] = c
        p = p + 1
      end
      v, i = table.concat(parts), p + 1
    else
      v, i = ci:match("^(%S*)()", j)
    end
    f[k] = k == "password" or v
  end
end

-- What the source reaches, as shown to people: "postgres://user@host:port/db", the same
-- text the C side puts in its messages, never the password.
local function shown(f)
  local host = type(f.host) == "string" and f.host
    or (os and os.getenv and os.getenv("PGHOST")) or ""
  return ("postgres://%s%s%s/%s"):format(type(f.user) == "string" and (f.user .. "@") or "",
    host, type(f.port) == "string" and (":" .. f.port) or "",
    type(f.dbname) == "string" and f.dbname or "")
end

function M.normalize(src, out, h)
  local inline = base.str(h, src, "conninfo")
  local env = base.str(h, src, "conninfo_env")
  local file = base.str(h, src, "conninfo_file")
  local given = (inline and 1 or 0) + (env and 1 or 0) + (file and 1 or 0)
  if given ~= 1 then
    h.fail("give exactly one of 'conninfo', 'conninfo_env' (a variable holding it) or "
      .. "'conninfo_file'")
  end
  if inline then
    local f = fields(inline)
    if not f then h.fail("'conninfo' does not read as key = value pairs or a URI") end
    if f.password then
      h.fail("'conninfo' holds a password: put the connection string in a variable "
        .. "(conninfo_env) or a file (conninfo_file), or the password in ~/.pgpass")
    end
    out.target = shown(f)
  elseif env then
    local ci = os and os.getenv and os.getenv(env)
    local f = ci and fields(ci)
    out.target = f and shown(f) or ("postgres ($%s)"):format(env)
  else
    out.target = ("postgres (%s)"):format(base.abs_path(h, file))
  end
  out.conninfo, out.conninfo_env = inline, env
  out.conninfo_file = base.abs_path(h, file)
  out.query = base.str(h, src, "query", true)
  if src.params ~= nil then
    if type(src.params) ~= "table" then h.fail("'params' must be a list of values") end
    local params = {}
    for k in pairs(src.params) do
      if math.type(k) ~= "integer" or k < 1 or k > #src.params then
        h.fail("'params' must be a list (1, 2, ...), found the key %s", tostring(k))
      end
    end
    for i, v in ipairs(src.params) do
      local t = type(v)
      if t == "string" then params[i] = v
      elseif math.type(v) == "integer" then params[i] = ("%d"):format(v)
      elseif t == "number" then params[i] = ("%.17g"):format(v)
      elseif t == "boolean" then params[i] = tostring(v)
      else h.fail("params[%d] must be a string, number or boolean, got %s", i, t) end
    end
    out.params = params
  end
  if src.listen ~= nil then
    out.listen = base.str(h, src, "listen")
    -- The server cuts longer identifiers, and its notifications would then name another
    -- channel than the one compared with.
    if #out.listen > 63 then h.fail("'listen' must be at most 63 bytes (NAMEDATALEN)") end
  end
  out.interval_ms = src.interval ~= nil and h.duration(src.interval, "interval")
    or h.default("interval_ms")
  if out.interval_ms < 10 then h.fail("interval must be at least 10ms") end
  base.remote_options(h, src, out)
  if out.timeout_ms < 1 then h.fail("timeout must be at least 1ms") end
end

return M
