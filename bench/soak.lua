-- SPDX-License-Identifier: MIT (see LICENSE)
-- soak.lua: the soak benchmark (run by bench/soak.sh; argument: minutes). One engine in
-- this process (the Lua module) watches four files, two environment variables, a file
-- served by a real nginx, a Consul key, a Vault secret (the test servers of
-- spec/servers) and an etcd key (a real one-member etcd). About five times a second a
-- random source changes (some writes malformed: a file cut short, a body that is no
-- JSON); every 2 minutes one server restarts (nginx, Consul, Vault, etcd in turn; the
-- fake servers lose their data and get the current values again). Printed: the
-- process's resident memory, descriptors and threads over time, the events by kind, and
-- whether every component's value equals its source 5 s after the last write.
local H = require "spec.lua.helpers"
local N = require "spec.lua.nginx"

local minutes = tonumber(arg[1]) or 10
local total_s = minutes * 60
-- A server restart every 2 minutes (SOAK_RESTART_S: another interval, to try the restarts).
local RESTART_S = tonumber(os.getenv("SOAK_RESTART_S") or "") or 120
local sample_s = math.max(5, math.min(30, total_s / 20))
local uv = require "luv"

local function now_s() return uv.hrtime() / 1e9 end

local function sh(cmd) return H.sh("unset LD_PRELOAD; " .. cmd) end

local function b64(s)
  local B = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local function ch(k) return B:sub(k + 1, k + 1) end
    out[#out + 1] = ch(n >> 18 & 63) .. ch(n >> 12 & 63) .. (b and ch(n >> 6 & 63) or "=")
      .. (c and ch(n & 63) or "=")
  end
  return table.concat(out)
end

-- ---- servers ----

-- A spec/servers fake on `port` (0: a free one); returns { port, addr, pid, stop }.
local function fake(script, port)
  local s = H.fake_server(script, port and port > 0 and ("--port " .. port) or nil)
  function s.stop_wait()
    s.stop()
    sh(("for i in $(seq 100); do kill -0 %d 2>/dev/null || break; sleep 0.05; done")
      :format(s.pid))
  end
  return s
end

local function curl(method, url, body, header)
  return sh(("curl -s -m 5 -X %s %s '%s' %s"):format(method,
    header and ("-H '" .. header .. "'") or "", url,
    body and ("--data-binary @- <<'SOAK_EOF'\n" .. body .. "\nSOAK_EOF\n") or ""))
end

-- A one-member etcd (spec/servers/etcd_cluster.py), killed and restarted on its data.
local function etcd_start()
  local p = io.popen("unset LD_PRELOAD; python3 -u spec/servers/etcd_cluster.py --members 1 "
    .. "2>/dev/null & pid=$!; echo $pid; (while kill -0 $PPID 2>/dev/null; do sleep 1; "
    .. "done; kill $pid) >/dev/null 2>&1 </dev/null &")
  local pid = tonumber(p:read("l"))
  local line = p:read("l") or ""
  p:close()
  local ep = assert(line:match("^ENDPOINTS ([^,]+)"), "etcd_cluster.py did not start: " .. line)
  local c = { pid = pid, endpoint = ep }
  local port = ep:match(":(%d+)$")
  function c.member()
    for p2, args in sh("ps -eo pid=,args="):gmatch("(%d+) ([^\n]*)") do
      if args:find("--listen-client-urls http://127.0.0.1:" .. port .. " ", 1, true) then
        return tonumber(p2), args
      end
    end
  end
  function c.put(key, value)
    return curl("POST", ep .. "/v3/kv/put",
      ('{"key":"%s","value":"%s"}'):format(b64(key), b64(value)))
  end
  function c.restart()
    local mp, args = c.member()
    if not mp then return end
    sh("kill -9 " .. mp)
    return function()
      sh(("(%s >>/dev/null 2>&1 </dev/null &)"):format(args))
      for _ = 1, 300 do
        if curl("POST", ep .. "/v3/maintenance/status", "{}"):match('"leader":"%d+"') then
          return
        end
        sh("sleep 0.1")
      end
    end
  end
  function c.stop()
    local mp = c.member()
    sh(("kill %d 2>/dev/null; for i in $(seq 100); do kill -0 %d 2>/dev/null || break; "
      .. "sleep 0.05; done"):format(pid, pid))
    if mp then sh("kill -9 " .. mp .. " 2>/dev/null") end
  end
  return c
end

-- ---- the engine ----

local nginx = N.start()
local consul = fake("consul_server.py")
local vault = fake("vault_server.py")
local etcd = etcd_start()
local mtime = os.time() - 100000   -- nginx's ETag is mtime + size: each write a new second

local truth = {}   -- component -> the value its source holds now (a table or a string)
local writes, malformed = 0, 0

local FILES = { "f1", "f2", "f3", "f4" }
local ENVS = { "SOAK_ENV_A", "SOAK_ENV_B" }

local policy = ([[
local rc = require "reactcfg"
return rc.policy { components = {
  f1 = rc.file "f1.json", f2 = rc.file "f2.json", f3 = rc.file "f3.yaml",
  f4 = rc.file "f4.toml",
  env_a = rc.env "SOAK_ENV_A", env_b = rc.env "SOAK_ENV_B",
  web = rc.http { url = %q, interval = "200ms" },
  consul = rc.consul { addr = %q, key = "soak/c", wait = "10s" },
  vault = rc.vault { addr = %q, path = "soak/v", token_env = "SOAK_VAULT_TOKEN",
                     interval = "500ms" },
  etcd = rc.etcd { endpoints = { %q }, key = "soak/e" },
} }
]]):format(nginx:url("web.json"), consul.addr, vault.addr, etcd.endpoint)

local function doc(fmt, n)
  local pad = ("x"):rep(math.random(0, 400))
  if fmt == "yaml" then return ("n: %d\npad: %s\n"):format(n, pad) end
  if fmt == "toml" then return ("n = %d\npad = \"%s\"\n"):format(n, pad) end
  return ('{"n": %d, "pad": "%s"}'):format(n, pad)
end

local dir
local FMT = { f1 = "json", f2 = "json", f3 = "yaml", f4 = "toml" }
local NAME = { f1 = "f1.json", f2 = "f2.json", f3 = "f3.yaml", f4 = "f4.toml" }

local function write_file(name, n, bad)
  local text = doc(FMT[name], n)
  if bad then text = text:sub(1, math.random(1, #text - 2)) .. (FMT[name] == "yaml"
    and ":\n  - [" or "") end
  if math.random() < 0.5 then
    H.write(dir .. "/" .. NAME[name], text)                     -- in place
  else
    H.write(dir .. "/." .. NAME[name] .. ".tmp", text)           -- rename over
    os.rename(dir .. "/." .. NAME[name] .. ".tmp", dir .. "/" .. NAME[name])
  end
end

local e
local actions = {
  function(n) -- a file, now and then cut short (then fixed by a later write)
    local name = FILES[math.random(#FILES)]
    local bad = math.random() < 0.1
    write_file(name, n, bad)
    if bad then malformed = malformed + 1 else truth[name] = n end
  end,
  function(n)
    local name = ENVS[math.random(#ENVS)]
    e:setenv(name, "v" .. n)
    truth[name == "SOAK_ENV_A" and "env_a" or "env_b"] = "v" .. n
  end,
  function(n)
    local bad = math.random() < 0.05
    mtime = mtime + 1
    nginx:write("web.json", bad and '{"n": ' or doc("json", n), mtime)
    if bad then malformed = malformed + 1 else truth.web = n end
  end,
  function(n)
    local bad = math.random() < 0.05
    curl("PUT", consul.addr .. "/v1/kv/soak/c", bad and "{n:" or doc("json", n))
    if bad then malformed = malformed + 1 else truth.consul = n end
  end,
  function(n)
    curl("POST", vault.addr .. "/v1/secret/data/soak/v", ('{"data": {"n": %d}}'):format(n),
      "X-Vault-Token: root")
    truth.vault = n
  end,
  function(n)
    etcd.put("soak/e", doc("json", n))
    truth.etcd = n
  end,
}

-- A valid value in every source (the start and the last write).
local function rewrite_all(n)
  for _, name in ipairs(FILES) do write_file(name, n); truth[name] = n end
  mtime = mtime + 1
  nginx:write("web.json", doc("json", n), mtime); truth.web = n
  curl("PUT", consul.addr .. "/v1/kv/soak/c", doc("json", n)); truth.consul = n
  curl("POST", vault.addr .. "/v1/secret/data/soak/v", ('{"data": {"n": %d}}'):format(n),
    "X-Vault-Token: root")
  truth.vault = n
  etcd.put("soak/e", doc("json", n)); truth.etcd = n
end

-- ---- measuring ----

local function read_all(path)
  local f = io.open(path)
  local text = f and f:read("a") or ""
  if f then f:close() end
  return text
end
local PID = read_all("/proc/self/stat"):match("^(%d+)")

-- This process (engine and driver): resident KiB, open descriptors, threads.
local function proc()
  local st = read_all("/proc/self/status")
  local p = io.popen("ls /proc/" .. PID .. "/fd | wc -l")
  local fds = (tonumber(p:read("l")) or 1) - 1   -- less the pipe to `ls` itself
  p:close()
  return tonumber(st:match("VmRSS:%s*(%d+)")) or 0, fds, tonumber(st:match("Threads:%s*(%d+)"))
end

local counts = {}
local function drain()
  for _, ev in ipairs(e:events()) do counts[ev.event] = (counts[ev.event] or 0) + 1 end
end

-- ---- the run ----

dir = H.tmpdir("soak")
H.write(dir .. "/policy.lua", policy)
for _, name in ipairs(FILES) do write_file(name, 0); truth[name] = 0 end
e = assert(require("reactcfg").engine(dir .. "/policy.lua"))
e:setenv("SOAK_VAULT_TOKEN", "root")
e:setenv("SOAK_ENV_A", "v0"); e:setenv("SOAK_ENV_B", "v0")
truth.env_a, truth.env_b = "v0", "v0"
rewrite_all(0)
assert(e:start())
e:run("2s")
drain()

print()
print("| minute | RSS MiB | descriptors | threads | commits | source.error | recovered |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
local function sample(t)
  drain()
  local rss, fds, threads = proc()
  print(("| %.1f | %.1f | %d | %d | %d | %d | %d |"):format(t / 60, rss / 1024, fds, threads,
    counts["commit"] or 0, counts["source.error"] or 0, counts["source.recovered"] or 0))
  io.stdout:flush()
end

local start = now_s()
sample(0)
local n, next_sample, next_restart, turn = 0, sample_s, RESTART_S, 0
local restarts = {}
local ORDER = { "nginx", "consul", "vault", "etcd" }
while true do
  local t = now_s() - start
  if t >= total_s then break end
  n = n + 1
  actions[math.random(#actions)](n)
  writes = writes + 1
  e:run(("%dms"):format(math.random(100, 300)))
  if t >= next_restart then
    turn = turn % #ORDER + 1
    local which = ORDER[turn]
    restarts[#restarts + 1] = ("%s at %.1f min"):format(which, t / 60)
    if which == "nginx" then
      nginx:stop(); e:run("1s"); nginx:restart()
    elseif which == "consul" then
      local port = consul.port
      consul.stop_wait(); e:run("1s"); consul = fake("consul_server.py", port)
      curl("PUT", consul.addr .. "/v1/kv/soak/c", doc("json", n)); truth.consul = n
    elseif which == "vault" then
      local port = vault.port
      vault.stop_wait(); e:run("1s"); vault = fake("vault_server.py", port)
      curl("POST", vault.addr .. "/v1/secret/data/soak/v", ('{"data": {"n": %d}}'):format(n),
        "X-Vault-Token: root")
      truth.vault = n
    else
      local back = etcd.restart(); e:run("1s"); if back then back() end
    end
    next_restart = next_restart + RESTART_S
  end
  if t >= next_sample then
    sample(t)
    next_sample = next_sample + sample_s
  end
end

-- The last write: every source valid, then 5 s for the engine to follow.
n = n + 1
rewrite_all(n)
e:run("5s")
sample(now_s() - start)
local reveal = { reveal = true }
local ok_all = true
print()
print("| component | source holds | engine holds | equal |")
print("| --- | --- | --- | --- |")
local names = {}
for k in pairs(truth) do names[#names + 1] = k end
table.sort(names)
for _, name in ipairs(names) do
  local want = truth[name]
  local got
  if type(want) == "number" then got = e:get(name .. ".n", reveal) else got = e:get(name) end
  local eq = got == want
  ok_all = ok_all and eq
  print(("| %s | %s | %s | %s |"):format(name, tostring(want), tostring(got), eq and "yes" or "NO"))
end
drain()
print()
local kinds = {}
for k in pairs(counts) do kinds[#kinds + 1] = k end
table.sort(kinds)
local ev = {}
for _, k in ipairs(kinds) do ev[#ev + 1] = ("%s %d"):format(k, counts[k]) end
print(("- %d writes (%d malformed) over %.1f minutes; restarts: %s"):format(writes, malformed,
  minutes, #restarts > 0 and table.concat(restarts, ", ") or "none"))
print("- events: " .. table.concat(ev, ", "))
print("- every component equals its source 5 s after the last write: "
  .. (ok_all and "yes" or "NO"))
e:close()
nginx:close()
consul.stop(); vault.stop(); etcd.stop()
H.rmdir(dir)
os.exit(ok_all and 0 or 1)
