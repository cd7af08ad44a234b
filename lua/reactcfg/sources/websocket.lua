-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.websocket: rc.websocket { url = "wss://config.example/live",
-- headers = {...}, format, ping = "20s" | false, timeout = "5s", max_bytes, limits,
-- ca_file, insecure, token_env | token_file, backoff, circuit }: a WebSocket whose every
-- message is one complete document, the current one sent first after each connect.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

local OPTIONS = base.with_remote_options { url = true, headers = true, format = true,
  ping = true }

-- Headers the handshake sets itself (lowercase).
local RESERVED = { host = true, upgrade = true, connection = true,
  ["sec-websocket-key"] = true, ["sec-websocket-version"] = true,
  ["sec-websocket-accept"] = true, ["sec-websocket-extensions"] = true,
  ["sec-websocket-protocol"] = true, ["content-length"] = true,
  ["transfer-encoding"] = true }

function M.constructors.websocket(opts)
  if type(opts) == "string" then opts = { url = opts } end
  base.check_options("websocket", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("websocket", spec)
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

-- ws[s]://[user[:password]@]host[:port][/path][?query][#fragment] -> the parts the C
-- side needs, and what may be shown: scheme, host and path, without the credentials
-- and the query (which may carry a token).
local function parse_url(h, url)
  local scheme, rest = url:match("^(%a+)://(.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "ws" and scheme ~= "wss" then
    h.fail("url must be a ws:// or wss:// URL, got %q", base.display_url(url))
  end
  if url:find("[%s%c]") then h.fail("url must not contain spaces or control characters") end
  rest = rest:gsub("#.*$", "")  -- a fragment is never sent (RFC 6455 3)
  local authority, resource = rest:match("^([^/?]*)(.*)$")
  if resource == "" then resource = "/" end
  if resource:sub(1, 1) == "?" then resource = "/" .. resource end
  local userinfo, hostport = authority:match("^(.*)@([^@]*)$")
  if not userinfo then hostport = authority end
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([%w.-]+):?(%d*)$") end
  if not host or host == "" then
    h.fail("url has no host, or a malformed port: %q", base.display_url(url))
  end
  port = port ~= "" and tonumber(port) or (scheme == "wss" and 443 or 80)
  if port < 1 or port > 65535 then h.fail("url: port %d is out of range", port) end
  local user, password
  if userinfo then
    user, password = userinfo:match("^([^:]*):(.*)$")
    if not user then user = userinfo end
    user, password = unescape(user), password and unescape(password)
    if (user .. (password or "")):find("%z") then h.fail("url: a NUL byte in the user") end
  end
  local shown = ("%s://%s%s"):format(scheme, hostport, resource:match("^[^?]*"))
  return { tls = scheme == "wss", host = host, port = port, resource = resource,
    user = user ~= "" and user or nil, password = password, shown = shown }
end

function M.normalize(src, out, h)
  local url = base.str(h, src, "url", true)
  local u = parse_url(h, url)
  out.host, out.port, out.tls, out.resource = u.host, u.port, u.tls, u.resource
  -- Credentials in the URL are sent as Basic authorization and never shown: `target`
  -- and every message name the URL without them and without its query.
  out.user, out.password = u.user, u.password
  out.target = u.shown
  out.format = base.format(h, src)
  out.headers = base.headers(h, src, RESERVED)
  if src.ping == false then
    out.ping_ms = 0
  else
    if src.ping ~= nil and type(src.ping) ~= "string" and type(src.ping) ~= "number" then
      h.fail("'ping' must be a duration such as \"20s\" or false, got %s", type(src.ping))
    end
    out.ping_ms = src.ping ~= nil and h.duration(src.ping, "ping") or h.default("ping_ms")
    if out.ping_ms < 10 then h.fail("ping must be at least 10ms") end
  end
  base.remote_options(h, src, out)
  if out.timeout_ms < 1 then h.fail("timeout must be at least 1ms") end
  local auth = ((out.user or out.password) and 1 or 0)
    + ((out.token_env or out.token_file) and 1 or 0)
  for k in pairs(out.headers or {}) do
    if k:lower() == "authorization" then auth = auth + 1 end
  end
  if auth > 1 then
    h.fail("give the credentials once: in the url, token_env/token_file or an "
      .. "Authorization header")
  end
end

return M
