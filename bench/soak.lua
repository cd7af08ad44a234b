-- SPDX-License-Identifier: MIT (see LICENSE)
-- soak.lua: the soak benchmark (run by bench/soak.sh; arguments: minutes, the path of
-- reactcfg-lua). The engine runs in a process of its own, the CLI as in production
-- (`reactcfg-lua --run POLICY --json`, its output in a file); this process is only the
-- driver. The engine watches four files, two environment variables (read at start: no
-- one can change another process's environment), a file served by a real nginx, a
-- Consul key, a Vault secret (the test servers of spec/servers) and an etcd key (a real
-- one-member etcd). About five times a second a random source changes (some writes
-- malformed: a file cut short, a body that is no JSON); every 2 minutes one server
-- restarts (nginx, Consul, Vault, etcd in turn; the fake servers lose their data and get
-- the current values again). Printed: the engine process's resident memory (all and
-- anonymous), descriptors and threads over time, read from /proc/PID, the events by
-- kind, and whether every component's value (as the engine's commits tell it) equals its
-- source 5 s after the last write. SOAK_ENGINE_WRAP (for instance "valgrind
-- --tool=massif") runs the engine under a tool that keeps its process id.
local H = require "spec.lua.helpers"
local N = require "spec.lua.nginx"

local minutes = tonumber(arg[1]) or 10
local BIN = assert(arg[2], "usage: soak.lua MINUTES REACTCFG_LUA")
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

-- ---- the engine process ----

local rc = require "reactcfg"   -- rc.parse only: the engine runs in a process of its own

-- Starts `reactcfg-lua --run POLICY --json` (the CLI, as in production) with `env` in
-- its environment and its standard output in `out_path`, read back as it grows.
local function engine_spawn(policy_path, out_path, env)
  local cmd = { "env" }
  for _, kv in ipairs(env) do cmd[#cmd + 1] = kv end
  for word in (os.getenv("SOAK_ENGINE_WRAP") or ""):gmatch("%S+") do cmd[#cmd + 1] = word end
  for _, a in ipairs { BIN, "--run", policy_path, "--json" } do cmd[#cmd + 1] = a end
  local out = assert(uv.fs_open(out_path, "w", tonumber("644", 8)))
  local null = assert(uv.fs_open("/dev/null", "r", 0))
  local exited
  local handle, pid = uv.spawn(cmd[1], { args = { table.unpack(cmd, 2) },
    stdio = { null, out, 2 } }, function(code, sig) exited = { code, sig } end)
  uv.fs_close(out)
  uv.fs_close(null)
  assert(handle, "cannot start reactcfg-lua: " .. tostring(pid))
  local p = { pid = pid }
  function p.exited() return exited end
  -- SIGTERM (a clean stop), waited for up to 10 s. Returns the exit code.
  function p.stop()
    if not exited then uv.kill(pid, "sigterm") end
    for _ = 1, 500 do
      if exited then break end
      local t = uv.new_timer()
      t:start(20, 0, function() t:close() end)
      uv.run("once")
    end
    if not exited then uv.kill(pid, "sigkill") end
    handle:close()
    uv.run("nowait")
    return exited and exited[1]
  end
  return p
end

-- Lets `ms` milliseconds pass (the engine runs meanwhile in its own process).
local function wait_ms(ms)
  local fired = false
  local t = uv.new_timer()
  t:start(ms, 0, function() fired = true; t:close() end)
  while not fired do uv.run("once") end
end

-- What the engine printed: event counts and, from its commits' change lists, the value
-- of every leaf path (the engine's configuration as the stream tells it).
local out_path
local out_off, out_rest = 0, ""
local counts, held = {}, {}
local function under(path, root) return path == root or path:sub(1, #root + 1) == root .. "." end
local function set_leaves(path, v)
  if type(v) == "table" then
    for k, x in pairs(v) do set_leaves(path .. "." .. tostring(k), x) end
  elseif v ~= rc.null and v ~= nil then
    held[path] = v
  end
end
local function read_output()
  local f = io.open(out_path, "rb")
  if not f then return end
  f:seek("set", out_off)
  local chunk = f:read("a") or ""
  f:close()
  out_off = out_off + #chunk
  out_rest = out_rest .. chunk
  for line in out_rest:gmatch("([^\n]*)\n") do
    local obj = rc.parse(line, "json")
    if type(obj) == "table" and obj.revision and obj.changes then
      counts.commit = (counts.commit or 0) + 1
      for _, ch in ipairs(obj.changes) do
        if ch.kind ~= "touched" then
          for k in pairs(held) do if under(k, ch.path) then held[k] = nil end end
          if ch.kind ~= "removed" then set_leaves(ch.path, ch.new) end
        end
      end
    elseif type(obj) == "table" and obj.event then
      counts[obj.event] = (counts[obj.event] or 0) + 1
    end
  end
  out_rest = out_rest:match("([^\n]*)$")
end

local e   -- the engine process (engine_spawn)

local nginx = N.start()
local consul = fake("consul_server.py")
local vault = fake("vault_server.py")
local etcd = etcd_start()
local mtime = os.time() - 100000   -- nginx's ETag is mtime + size: each write a new second

local truth = {}   -- component -> the value its source holds now (a table or a string)
local writes, malformed = 0, 0

local FILES = { "f1", "f2", "f3", "f4" }

local policy = ([[
local rc = require "reactcfg"
return rc.policy { components = {
  f1 = rc.file "f1.json", f2 = rc.file "f2.json", f3 = rc.file "f3.yaml",
  f4 = rc.file "f4.toml",
  env_a = rc.env "SOAK_ENV_A", env_b = rc.env "SOAK_ENV_B",
  web = rc.http { url = %q, interval = "200ms" },
  consul = rc.consul { addr = %q, key = "soak/c", wait = "10s" },
  -- secret: the token field only (none), so that --run prints the values it commits.
  vault = { source = rc.vault { addr = %q, path = "soak/v", token_env = "SOAK_VAULT_TOKEN",
                                interval = "500ms" }, secret = { "token" } },
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

local actions = {
  function(n) -- a file, now and then cut short (then fixed by a later write)
    local name = FILES[math.random(#FILES)]
    local bad = math.random() < 0.1
    write_file(name, n, bad)
    if bad then malformed = malformed + 1 else truth[name] = n end
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
-- The engine process: resident KiB (all, anonymous), open descriptors, threads.
local function proc()
  local st = read_all("/proc/" .. e.pid .. "/status")
  local p = io.popen("ls /proc/" .. e.pid .. "/fd | wc -l")
  local fds = tonumber(p:read("l")) or 0
  p:close()
  return tonumber(st:match("VmRSS:%s*(%d+)")) or 0, tonumber(st:match("RssAnon:%s*(%d+)")) or 0,
    fds, tonumber(st:match("Threads:%s*(%d+)")) or 0
end

local function drain() read_output() end

-- ---- the run ----

dir = H.tmpdir("soak")
H.write(dir .. "/policy.lua", policy)
for _, name in ipairs(FILES) do write_file(name, 0); truth[name] = 0 end
rewrite_all(0)
out_path = dir .. "/engine.jsonl"
e = engine_spawn(dir .. "/policy.lua", out_path,
  { "SOAK_ENV_A=v0", "SOAK_ENV_B=v0", "SOAK_VAULT_TOKEN=root" })
truth.env_a, truth.env_b = "v0", "v0"
for _ = 1, 100 do
  drain()
  if counts["engine.started"] or e.exited() then break end
  wait_ms(100)
end
assert(counts["engine.started"], "reactcfg-lua --run did not start (see " .. out_path .. ")")
wait_ms(2000)
drain()
print(("engine process: pid %d (reactcfg-lua --run POLICY --json)"):format(e.pid))

print()
print("| minute | RSS MiB | anon MiB | descriptors | threads | commits | source.error | recovered |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
local samples = {}   -- { minute, RSS KiB, anonymous KiB }
local function sample(t)
  drain()
  local rss, anon, fds, threads = proc()
  samples[#samples + 1] = { t / 60, rss, anon }
  print(("| %.1f | %.1f | %.1f | %d | %d | %d | %d | %d |"):format(t / 60, rss / 1024,
    anon / 1024, fds, threads,
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
  wait_ms(math.random(100, 300))
  if t >= next_restart then
    turn = turn % #ORDER + 1
    local which = ORDER[turn]
    restarts[#restarts + 1] = ("%s at %.1f min"):format(which, t / 60)
    if which == "nginx" then
      nginx:stop(); wait_ms(1000); nginx:restart()
    elseif which == "consul" then
      local port = consul.port
      consul.stop_wait(); wait_ms(1000); consul = fake("consul_server.py", port)
      curl("PUT", consul.addr .. "/v1/kv/soak/c", doc("json", n)); truth.consul = n
    elseif which == "vault" then
      local port = vault.port
      vault.stop_wait(); wait_ms(1000); vault = fake("vault_server.py", port)
      curl("POST", vault.addr .. "/v1/secret/data/soak/v", ('{"data": {"n": %d}}'):format(n),
        "X-Vault-Token: root")
      truth.vault = n
    else
      local back = etcd.restart(); wait_ms(1000); if back then back() end
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
wait_ms(5000)
sample(now_s() - start)
local ok_all = true
print()
print("| component | source holds | engine holds | equal |")
print("| --- | --- | --- | --- |")
local names = {}
for k in pairs(truth) do names[#names + 1] = k end
table.sort(names)
for _, name in ipairs(names) do
  local want = truth[name]
  local got = held[name .. (type(want) == "number" and ".n" or "")]
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
-- The resident memory's growth in each half of the run (KiB per minute, between the
-- samples nearest the start, the middle and the end): a second half near zero is a
-- plateau (allocator arenas, caches filled once); a steady slope in both is a leak.
if #samples >= 3 then
  local first, last = samples[1], samples[#samples]
  local mid = samples[1]
  for _, sm in ipairs(samples) do
    if math.abs(sm[1] - last[1] / 2) < math.abs(mid[1] - last[1] / 2) then mid = sm end
  end
  local function slope(a, b, i) return (b[i] - a[i]) / math.max(b[1] - a[1], 1e-9) end
  print(("- RSS growth, KiB per minute: first half %.1f, second half %.1f (anonymous: %.1f, "
    .. "%.1f)"):format(slope(first, mid, 2), slope(mid, last, 2), slope(first, mid, 3),
    slope(mid, last, 3)))
end
print("- every component equals its source 5 s after the last write: "
  .. (ok_all and "yes" or "NO"))
local code = e.stop()
print(("- the engine process exited with %s on SIGTERM"):format(tostring(code)))
ok_all = ok_all and code == 0
nginx:close()
consul.stop(); vault.stop(); etcd.stop()
H.rmdir(dir)
os.exit(ok_all and 0 or 1)
