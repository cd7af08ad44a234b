-- SPDX-License-Identifier: MIT (see LICENSE)
-- helpers.lua: shared by the specs: temporary directories, file writes, and an engine
-- started on a policy text.
local rc = require "reactcfg"

local H = {}

local base = os.getenv("RC_TEST_TMP") or "/tmp"
os.execute("mkdir -p '" .. base .. "'")

function H.tmpdir(name)
  local p = io.popen("mktemp -d '" .. base .. "/" .. name .. ".XXXXXX'")
  local dir = p:read("*l")
  p:close()
  return dir
end

function H.rmdir(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

function H.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local live = {}   -- engines and directories made by H.engine, for H.cleanup

--- Writes `policy` into a new directory (plus any `files`), creates and starts an
--- engine on it. Returns engine, dir. `after_each(H.cleanup)` closes and removes them.
function H.engine(policy, files, name)
  local dir = H.tmpdir(name or "spec")
  live[#live + 1] = { dir = dir }
  for rel, text in pairs(files or {}) do H.write(dir .. "/" .. rel, text) end
  H.write(dir .. "/policy.lua", policy)
  local e = assert(rc.engine(dir .. "/policy.lua"))
  live[#live].e = e
  assert(e:start())
  return e, dir
end

--- The error that loading or starting `policy` (written to a new directory) gives, as a
--- string ("nil" when it loads and starts).
function H.load_error(policy)
  local dir = H.tmpdir("load-error")
  H.write(dir .. "/policy.lua", policy)
  local eng, err = rc.engine(dir .. "/policy.lua")
  if eng then
    local _
    _, err = eng:start()
    eng:close()
  end
  H.rmdir(dir)
  return tostring(err)
end

--- Closes every engine and removes every directory H.engine made.
function H.cleanup()
  for _, l in ipairs(live) do
    if l.e then l.e:close() end
    H.rmdir(l.dir)
  end
  live = {}
end

--- Runs until `n` commits have arrived (at most 5 s), then 300 ms more so that any extra
--- commit is counted; returns every commit seen.
function H.commits(e, n, quiet)
  local got = {}
  e:run_until(function()
    for _, c in ipairs(e:commits()) do got[#got + 1] = c end
    return #got >= n
  end, "5s")
  e:run(quiet or "300ms")
  for _, c in ipairs(e:commits()) do got[#got + 1] = c end
  return got
end

--- Runs a shell command; returns its output (stdout and stderr) and exit status.
function H.sh(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)\n?$"))
  return (out:gsub("exit=%d+\n?$", "")), code
end

--- The events named `name` (e.g. "source.error") among those the engine has recorded
--- since the last call to e:events().
function H.events(e, name)
  local out = {}
  for _, ev in ipairs(e:events()) do
    if ev.event == name then out[#out + 1] = ev end
  end
  return out
end

--- How many reads of source kind `kind` the engine's fetch-duration histogram counted.
function H.fetch_count(e, kind)
  local pat = ('reactcfg_source_fetch_duration_seconds_count{kind="%s"} (%%d+)'):format(kind)
  return tonumber(e:metrics():match(pat)) or 0
end

--- A policy builder for the specs of one source kind: returns policy(opts, extra), the
--- text of a policy with one component `name` whose source is rc.<kind> { opts }, and
--- `extra` (more of the component's fields, starting with a comma) after it.
function H.source_policy(name, kind)
  return function(opts, extra)
    return ([[
local rc = require "reactcfg"
return rc.policy { components = {
  %s = { source = rc.%s { %s }%s },
} }
]]):format(name, kind, opts, extra or "")
  end
end

--- Runs the engine until an event named `name` arrives (at most 5 s); returns it (nil
--- on timeout). Other events seen meanwhile are drained.
function H.wait_event(e, name)
  local got
  e:run_until(function()
    got = got or H.events(e, name)[1]
    return got ~= nil
  end, "5s")
  return got
end

--- Runs the engine until an event named `name` whose message matches the Lua pattern
--- `pat` arrives (at most `timeout`, default 5 s); returns it (nil on timeout). Other
--- events seen meanwhile are drained.
function H.wait_for(e, name, pat, timeout)
  local got
  e:run_until(function()
    for _, ev in ipairs(H.events(e, name)) do
      if not got and (ev.message or ""):match(pat) then got = ev end
    end
    return got ~= nil
  end, timeout or "5s")
  return got
end

--- A test-bench session (reactcfg.sim, virtual clock, values only from pushes) on a
--- policy text written to a new directory. Returns session, dir.
function H.bench_session(policy)
  local dir = H.tmpdir("bench")
  H.write(dir .. "/policy.lua", policy)
  local s = assert(require("reactcfg.sim").session(dir .. "/policy.lua", { sources = false }))
  return s, dir
end

--- Starts one of the protocol servers of spec/servers (consul_server.py, vault_server.py)
--- on a free port; returns { pid, port, addr = "http://127.0.0.1:PORT", stop }.
function H.fake_server(script, args)
  -- Without LD_PRELOAD: under the ASan build it would instrument python too.
  local p = io.popen(("env -u LD_PRELOAD python3 -u spec/servers/%s --port 0 %s 2>/dev/null"
    .. " & echo $!"):format(script, args or ""))
  local pid = tonumber(p:read("l"))
  local port = tonumber((p:read("l") or ""):match("^LISTENING (%d+)"))
  p:close()
  assert(pid and port, script .. " did not start")
  local s = { pid = pid, port = port, addr = ("http://127.0.0.1:%d"):format(port),
    stop = function() os.execute("kill " .. pid .. " 2>/dev/null") end }
  --- How many of the last 200 requests the server saw start with `prefix`
  --- ("GET /v1/kv/app", "PUT /v1/sys/leases/renew").
  function s.requests(prefix)
    local out = H.sh(("env -u LD_PRELOAD curl -s '%s/_test/requests'"):format(s.addr))
    local n = 0
    for r in out:gmatch('"([A-Z]+ [^"]*)"') do
      if r:find(prefix, 1, true) == 1 then n = n + 1 end
    end
    return n
  end
  return s
end

--- A WebSocket server (spec/servers/ws_server.py on Debian's python3-websockets) on a
--- free port; `args` go on its command line ("--token T", "--cert C --key K"). Returns
--- { port, url = "ws://127.0.0.1:PORT", set(doc [, binary]) (the current document, sent
--- to every client), post(name, json) (any control of ws_server.py), stats() (clients,
--- connects, attempts, raw: the JSON with last_headers), kill() (SIGKILL, waited for), start() (again, on the same
--- ports, with no document until one is set), stop() }. The server exits by itself once
--- this Lua process is gone.
function H.ws_server(args)
  local w = { args = args or "", port = 0, cport = 0 }
  local function quote(v) return "'" .. tostring(v):gsub("'", "'\\''") .. "'" end
  function w.start()
    -- Debian's python3: python3-websockets is a Debian package, not a pip one.
    local p = io.popen(("env -u LD_PRELOAD /usr/bin/python3 -u spec/servers/ws_server.py "
      .. "--port %d --control-port %d --parent $PPID %s 2>/dev/null & echo $!")
      :format(w.port, w.cport, w.args))
    w.pid = tonumber(p:read("l"))
    local port, cport = (p:read("l") or ""):match("^LISTENING (%d+) CONTROL (%d+)")
    p:close()
    assert(w.pid and port, "ws_server.py did not start")
    w.port, w.cport = tonumber(port), tonumber(cport)
    w.url = ("ws://127.0.0.1:%d"):format(w.port)
  end
  local function control(method, name, body, query)
    local out = H.sh(("env -u LD_PRELOAD curl -s -X %s %s 'http://127.0.0.1:%d/_test/%s%s'")
      :format(method, body and ("--data-binary " .. quote(body)) or "", w.cport, name,
        query or ""))
    return out
  end
  function w.set(doc, binary) return control("POST", "set", doc, binary and "?binary=1") end
  function w.post(name, json) return control("POST", name, json or "{}") end
  function w.stats()
    local out = control("GET", "stats")
    return {
      clients = tonumber(out:match('"clients": (%d+)')),
      connects = tonumber(out:match('"connects": (%d+)')),
      attempts = tonumber(out:match('"attempts": (%d+)')),
      raw = out,
    }
  end
  function w.kill()
    H.sh(("kill -9 %d; while kill -0 %d 2>/dev/null; do sleep 0.02; done"):format(w.pid,
      w.pid))
  end
  function w.stop() if w.pid then H.sh("kill " .. w.pid .. " 2>/dev/null") end end
  w.start()
  return w
end

--- "kind path" of each change of a commit, in commit order, or sorted when `sorted`.
function H.change_strings(commit, sorted)
  local out = {}
  for _, c in ipairs(commit.changes) do out[#out + 1] = c.kind .. " " .. c.path end
  if sorted then table.sort(out) end
  return out
end

--- Path of a built program (reactcfg-lua, ...).
function H.bin(name)
  return (os.getenv("RC_BIN") or "build") .. "/" .. name
end

--- A real redis-server (Debian's) on a free port, with `args` added to its command line
--- and `auth` the redis-cli options that authenticate. Returns { port, addr =
--- "redis://127.0.0.1:PORT", cmd(...) (one command through redis-cli, its output),
--- kill() (SIGKILL, waited for), start() (again, same port, empty), stop() }. A watchdog
--- kills it once this Lua process is gone, so a crashed spec run leaves no server behind.
function H.redis_server(args, auth)
  local function sh(cmd) return H.sh("unset LD_PRELOAD; " .. cmd) end
  local function quote(v) return "'" .. tostring(v):gsub("'", "'\\''") .. "'" end
  local port = tonumber((sh("python3 -c 'import socket; s = socket.socket(); "
    .. "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'")):match("%d+"))
  assert(port, "no free port")
  local r = { port = port, dir = H.tmpdir("redis"), args = args or "", auth = auth or "" }
  r.addr = ("redis://127.0.0.1:%d"):format(r.port)
  function r.cmd(...)
    local q = {}
    for i, a in ipairs { ... } do q[i] = quote(a) end
    return (sh(("redis-cli -p %d %s %s"):format(r.port, r.auth, table.concat(q, " "))))
  end
  function r.start()
    local p = io.popen(("unset LD_PRELOAD; redis-server --port %d --bind 127.0.0.1 "
      .. "--save '' --appendonly no --dir %s %s >%s/log 2>&1 & pid=$!; echo $pid; "
      .. "(while kill -0 $PPID 2>/dev/null; do sleep 1; done; kill -9 $pid) "
      .. ">/dev/null 2>&1 </dev/null &"):format(r.port, r.dir, r.args, r.dir))
    r.pid = tonumber(p:read("l"))
    p:close()
    for _ = 1, 100 do
      if r.cmd("PING"):match("PONG") then return end
      sh("sleep 0.05")
    end
    error("redis-server did not start: " .. sh("cat " .. r.dir .. "/log"))
  end
  function r.kill()
    sh(("kill -9 %d; while kill -0 %d 2>/dev/null; do sleep 0.02; done"):format(r.pid,
      r.pid))
  end
  function r.stop()
    if r.pid then r.kill() end
    H.rmdir(r.dir)
  end
  r.start()
  return r
end

return H
