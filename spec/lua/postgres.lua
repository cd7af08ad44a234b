-- SPDX-License-Identifier: MIT (see LICENSE)
-- postgres.lua: a real PostgreSQL 15 (Debian postgresql) for the PostgreSQL source
-- specs, in its own temporary directory, on a unix socket there and on 127.0.0.1 at a
-- free port, with every statement logged. initdb refuses to run as root: when the specs
-- run as root the server runs as the `postgres` user, which then owns the directory. A
-- watchdog stops the server and removes the directory if this Lua process dies without
-- P:close(). P.new() -> a started server with :conninfo(user, password), :sql(text),
-- :stop(), :start(), :single(sql) (a statement run with the server stopped, by the
-- single-user backend: no client sees it happen), :log_count(text), :close().
local H = require "spec.lua.helpers"

local P = {}
P.__index = P

local BIN = "/usr/lib/postgresql/15/bin"
local ROOT = (H.sh("id -u")):match("^0%s*$") ~= nil

-- A shell word.
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs `cmd` as the server's owner, without the ASan preload of a sanitizer run (the
-- server is not instrumented). Returns output and exit status.
local function as_owner(cmd)
  if ROOT then
    return H.sh("env -u LD_PRELOAD runuser -u postgres -- sh -c " .. q(cmd))
  end
  return H.sh("env -u LD_PRELOAD sh -c " .. q(cmd))
end

local CONF = [[
listen_addresses = '127.0.0.1'
unix_socket_directories = '@DIR@'
port = @PORT@
fsync = off
synchronous_commit = off
full_page_writes = off
log_statement = 'all'
log_min_messages = warning
]]

-- `reader` by password (scram), everyone else trusted.
local HBA = [[
local all reader scram-sha-256
local all all trust
host all all 127.0.0.1/32 trust
]]

local function free_port()
  local out = H.sh([[env -u LD_PRELOAD python3 -c 'import socket; s=socket.socket(); ]]
    .. [[s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()']])
  return assert(tonumber(out:match("%d+")), "no free port: " .. out)
end

--- Makes a cluster in a new directory and starts it, with a database `app`.
function P.new()
  local self = setmetatable({ dir = H.tmpdir("pg") }, P)
  -- The server runs in its data directory: the socket directory must be absolute.
  if self.dir:sub(1, 1) ~= "/" then
    self.dir = H.sh("pwd"):match("[^\n]+") .. "/" .. self.dir
  end
  self.data = self.dir .. "/data"
  if ROOT then assert(os.execute("chown postgres:postgres " .. q(self.dir))) end
  local out, code = as_owner(("%s/initdb -D %s -U postgres -A trust -E UTF8 --no-locale "
    .. "--no-sync"):format(BIN, q(self.data)))
  if code ~= 0 then
    H.rmdir(self.dir)
    error("initdb failed: " .. out)
  end
  local f = assert(io.open(self.data .. "/postgresql.conf", "a"))
  self.port = free_port()
  f:write((CONF:gsub("@DIR@", self.dir):gsub("@PORT@", tostring(self.port))))
  f:close()
  H.write(self.data .. "/pg_hba.conf", HBA)
  -- The watchdog: once this process is gone, stop the server and remove everything. In
  -- a session of its own, so that a ctest timeout killing our process group spares it.
  local wd = H.sh(("env -u LD_PRELOAD setsid sh -c %s >/dev/null 2>&1 </dev/null & echo $!")
    :format(q(("while kill -0 %d 2>/dev/null; do sleep 1; done; %s; rm -rf %s")
      :format(tonumber(H.sh("echo $PPID"):match("%d+")),
        ROOT and ("runuser -u postgres -- %s/pg_ctl -D %s -m immediate stop"):format(BIN,
          q(self.data)) or ("%s/pg_ctl -D %s -m immediate stop"):format(BIN, q(self.data)),
        q(self.dir)))))
  self.watchdog = tonumber(wd:match("(%d+)%s*$"))
  self:start()
  self:sql("CREATE DATABASE app", "postgres")
  return self
end

--- Starts the server (again) and waits until it accepts connections.
function P:start()
  local out, code = as_owner(("%s/pg_ctl -D %s -l %s -w -t 60 start"):format(BIN,
    q(self.data), q(self.dir .. "/server.log")))
  if code ~= 0 then error("pg_ctl start failed: " .. out .. "\n" .. self:log()) end
  self.running = true
end

--- Stops the server (fast: sessions are told "terminating connection due to
--- administrator command" and closed) and waits until it is gone.
function P:stop()
  if not self.running then return end
  local out, code = as_owner(("%s/pg_ctl -D %s -m fast -w -t 60 stop"):format(BIN,
    q(self.data)))
  assert(code == 0, "pg_ctl stop failed: " .. out)
  self.running = false
end

--- Runs SQL (one or more statements) in database `db` (default app) as the superuser;
--- raises on an error unless `may_fail`. Returns psql's output and exit status.
function P:sql(text, db, may_fail)
  local file = self.dir .. "/stmt.sql"
  H.write(file, text)
  local out, code = H.sh(("env -u LD_PRELOAD %s/psql -X -q -A -t -v ON_ERROR_STOP=1 "
    .. "-h %s -p %d -U postgres -d %s -f %s"):format(BIN, q(self.dir), self.port,
    q(db or "app"), q(file)))
  if code ~= 0 and not may_fail then error("psql failed: " .. out) end
  return out, code
end

--- Runs one statement with the server stopped, through the single-user backend (no
--- socket, no client, so no notification reaches anyone), then leaves it stopped.
function P:single(stmt)
  self:stop()
  local file = self.dir .. "/single.sql"
  H.write(file, stmt .. "\n")
  local out, code = as_owner(("%s/postgres --single -D %s app < %s"):format(BIN,
    q(self.data), q(file)))
  assert(code == 0 and not out:find("ERROR"), "single-user statement failed: " .. out)
end

--- A connection string for `user` (default postgres), with `password` if given.
function P:conninfo(user, password)
  return ("host=%s port=%d dbname=app user=%s%s"):format(self.dir, self.port,
    user or "postgres", password and (" password=" .. password) or "")
end

--- The server's log.
function P:log()
  local f = io.open(self.dir .. "/server.log")
  if not f then return "" end
  local text = f:read("a")
  f:close()
  return text
end

--- How many statements the server ran that contain `text` (log_statement = 'all':
--- one "execute" or "statement" line each).
function P:log_count(text)
  local n = 0
  for line in self:log():gmatch("[^\n]+") do
    if line:find("LOG:  execute", 1, true) and line:find(text, 1, true) then n = n + 1 end
  end
  return n
end

function P:close()
  if self.running then pcall(self.stop, self) end
  if self.watchdog then os.execute("kill " .. self.watchdog .. " 2>/dev/null") end
  H.rmdir(self.dir)
end

return P
