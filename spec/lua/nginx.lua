-- SPDX-License-Identifier: MIT (see LICENSE)
-- nginx.lua: a real nginx (Debian nginx-light) for the HTTP source specs, on 127.0.0.1
-- at a free port, in its own temporary directory (config, logs, www), one process in
-- the foreground of a background shell. N.start(extra_locations) -> server with
-- :url(rel), :write(rel, text), :stop(), :restart(), :access_lines(pattern), :close().
local H = require "spec.lua.helpers"

local N = {}
N.__index = N

local function free_port()
  local out = H.sh([[env -u LD_PRELOAD python3 -c 'import socket; s=socket.socket(); ]]
    .. [[s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()']])
  return assert(tonumber(out:match("%d+")), "no free port: " .. out)
end

N.free_port = free_port

local function port_open(port)
  local _, code = H.sh(("env -u LD_PRELOAD bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d'")
    :format(port))
  return code == 0
end

local function wait_for(pred, what)
  for _ = 1, 200 do
    if pred() then return end
    os.execute("sleep 0.025")
  end
  error("timed out waiting for " .. what)
end

local ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

local CONF = [[
@LOAD@
daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events { worker_connections 256; }
http {
  log_format plain '$request_method $uri $status';
  access_log @DIR@/access.log plain;
  log_format proto '$server_protocol $connection $uri';
  access_log @DIR@/proto.log proto;
  client_body_temp_path @DIR@/tmp/body;
  proxy_temp_path @DIR@/tmp/proxy;
  fastcgi_temp_path @DIR@/tmp/fastcgi;
  uwsgi_temp_path @DIR@/tmp/uwsgi;
  scgi_temp_path @DIR@/tmp/scgi;
  default_type application/octet-stream;
  types { text/plain txt; application/json json; }
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:@PORT@;
@TLS@
    server_name localhost;
    root @DIR@/www;
@EXTRA@
  }
}
]]

--- Starts nginx; `extra` is inserted into the server block (locations). opts.tls: also
--- HTTPS (offering HTTP/2 and HTTP/1.1) on self.tls_port with a self-signed certificate
--- for 127.0.0.1 (self.cert, made by the openssl CLI). self.echo says whether the echo module (echo_sleep) is loaded.
function N.start(extra, opts)
  local self = setmetatable({ dir = H.tmpdir("nginx"), extra = extra or "" }, N)
  os.execute("mkdir -p '" .. self.dir .. "/www' '" .. self.dir .. "/tmp'")
  self.port = free_port()
  self.echo = io.open(ECHO_MODULE) ~= nil
  local tls = ""
  if opts and opts.tls then
    self.tls_port = free_port()
    self.cert = self.dir .. "/cert.pem"
    local _, code = H.sh(("env -u LD_PRELOAD openssl req -x509 -newkey rsa:2048 -nodes "
      .. "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
      .. "-keyout '%s/key.pem' -out '%s'"):format(self.dir, self.cert))
    assert(code == 0, "openssl could not make a test certificate")
    tls = ("    listen 127.0.0.1:%d ssl http2;\n    ssl_certificate %s;\n"
      .. "    ssl_certificate_key %s/key.pem;"):format(self.tls_port, self.cert, self.dir)
  end
  local load = self.echo and ("load_module " .. ECHO_MODULE .. ";") or ""
  local conf = CONF:gsub("@EXTRA@", (self.extra:gsub("%%", "%%%%")))
    :gsub("@LOAD@", load):gsub("@TLS@", tls)
    :gsub("@DIR@", self.dir):gsub("@PORT@", tostring(self.port))
  H.write(self.dir .. "/nginx.conf", conf)
  self:restart()
  return self
end

--- Starts (again) on the same port and directory.
function N:restart()
  -- Under `timeout` so that a crashed spec cannot leave it running for long (timeout
  -- passes our SIGTERM on).
  local out = H.sh(("env -u LD_PRELOAD timeout 600 /usr/sbin/nginx -p '%s/' "
    .. "-c '%s/nginx.conf' >'%s/stderr.log' 2>&1 & echo $!")
    :format(self.dir, self.dir, self.dir))
  self.pid = assert(tonumber(out:match("(%d+)%s*$")), out)
  local ok, err = pcall(wait_for, function() return port_open(self.port) end,
    "nginx to listen")
  if not ok then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    local f = io.open(self.dir .. "/error.log")
    error(err .. (f and (": " .. f:read("a")) or ""))
  end
end

--- Stops nginx and waits until the port is closed.
function N:stop()
  if not self.pid then return end
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  -- Not our child (a zombie may linger): a closed port says it is gone.
  wait_for(function() return not port_open(self.port) end, "nginx to exit")
  self.pid = nil
end

function N:close()
  self:stop()
  H.rmdir(self.dir)
end

function N:url(rel)
  return ("http://127.0.0.1:%d/%s"):format(self.port, rel)
end

function N:tls_url(rel)
  return ("https://127.0.0.1:%d/%s"):format(self.tls_port, rel)
end

--- Writes a file under the document root; `mtime` (seconds since the epoch) sets its
--- modification time, since nginx's ETag is mtime and size.
function N:write(rel, text, mtime)
  local path = self.dir .. "/www/" .. rel
  H.write(path, text)
  if mtime then os.execute(("touch -d @%d '%s'"):format(mtime, path)) end
end

--- Access-log lines ("GET /limits.json 304") matching a Lua pattern; with `log` =
--- "proto", the lines of the protocol log ("HTTP/2.0 <connection number> /limits.json").
function N:access_lines(pattern, log)
  local f = io.open(self.dir .. "/" .. (log or "access") .. ".log")
  if not f then return {} end
  local out = {}
  for line in f:lines() do
    if not pattern or line:find(pattern) then out[#out + 1] = line end
  end
  f:close()
  return out
end

return N
