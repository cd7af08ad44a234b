-- SPDX-License-Identifier: MIT (see LICENSE)
-- The admin endpoint (docs/OPERATIONS.md) of a running `reactcfg-lua --run --admin
-- ADDR`, driven with curl: every endpoint, the bearer token (401 with nothing changed),
-- a unix socket, oversized requests, a client that trickles one byte per second while the
-- engine keeps committing, the policy's `admin` key, and `reactcfg-lua attach` on a
-- pseudo-terminal and with -e --json.
local H = require "helpers"
local cjson = require "cjson"

local bin = H.bin("reactcfg-lua")
local here = debug.getinfo(1, "S").source:match("^@(.*)/lua/[^/]*$") or "spec"
local driver = here .. "/pty_drive.py"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Waits (bounded: `seconds`, 10 by default) until pred() is true; returns its last
--- value.
local function wait_for(pred, seconds)
  local v
  for _ = 1, (seconds or 10) * 40 do
    v = pred()
    if v then return v end
    os.execute("sleep 0.025")
  end
  return v
end

local POLICY = [[
local rc = require "reactcfg"
return rc.policy {
  components = {
    app = { source = rc.file("app.json"), secret = { "db.password" } },
  },
}
]]

local function app_json(host, max)
  return ('{"db": {"host": "%s", "pool": {"max": %d}, "password": "hunter2"}}')
    :format(host, max)
end

--- Starts `reactcfg-lua --run policy.lua --admin ADDR` in a new directory (`env`: a
--- string of VAR=value words). Returns { pid, addr (as printed), dir, stop(), err() }.
local function start(opts)
  opts = opts or {}
  local dir = H.tmpdir("admin")
  H.write(dir .. "/policy.lua", opts.policy or POLICY)
  H.write(dir .. "/app.json", app_json("a", 5))
  local admin = opts.admin or "127.0.0.1:0"
  admin = admin:gsub("DIR", dir)
  local cmd = ("cd %s && exec env %s %s --run policy.lua %s > run.out 2> run.err")
    :format(q(dir), opts.env or "", q(bin), admin ~= "" and ("--admin " .. q(admin)) or "")
  local p = io.popen("(" .. cmd .. ") & echo $!")
  local pid = tonumber(p:read("l"))
  p:close()
  local s = { pid = pid, dir = dir }
  function s.err() return read(dir .. "/run.err") or "" end
  function s.stop()
    os.execute("kill " .. pid .. " 2>/dev/null; while kill -0 " .. pid
      .. " 2>/dev/null; do sleep 0.05; done")
  end
  s.addr = wait_for(function()
    return s.err():match("admin endpoint on (%S+)") or
      (s.err():match("reactcfg%-lua: ") and "failed") or
      (opts.admin_from_policy and
        (read(dir .. "/run.out") or ""):match("engine.started") and "policy")
  end, 60) -- a loaded machine (or a sanitizer) may take long to start a process
  return s
end

--- curl with `args`; returns body, status code.
local function curl(args)
  local out = H.sh("env -u LD_PRELOAD curl -s -m 10 -w '\\n%{http_code}' " .. args)
  local body, code = out:match("^(.*)\n(%d+)$")
  return (body or out):gsub("\n$", ""), tonumber(code)
end

local function get(s, path, extra)
  return curl((extra or "") .. " " .. q("http://" .. s.addr .. path))
end

local function post(s, path, extra)
  return curl("-X POST " .. (extra or "") .. " " .. q("http://" .. s.addr .. path))
end

local function json(body) return cjson.decode(body) end

describe("the admin endpoint", function()
  local s
  before_each(function() s = start() end)
  after_each(function()
    s.stop()
    H.rmdir(s.dir)
  end)

  it("answers health, readiness, status and metrics", function()
    assert.truthy(s.addr:match("^127%.0%.0%.1:%d+$"), s.err())
    local body, code = get(s, "/healthz")
    assert.equal(200, code)
    assert.equal("ok", body)
    body, code = get(s, "/readyz")
    assert.equal(200, code)
    assert.is_true(json(body).ready)
    body, code = get(s, "/status")
    assert.equal(200, code)
    assert.equal(1, json(body).revision)
    assert.equal("ok", json(body).components[1].state)
    body, code = get(s, "/metrics")
    assert.equal(200, code)
    assert.truthy(body:find("\nreactcfg_revision 1\n", 1, true), body)
    assert.truthy(body:find("# TYPE reactcfg_reload_attempts_total counter", 1, true))
  end)

  it("serves the running configuration with secrets redacted, whole or by path", function()
    local body, code = get(s, "/config")
    assert.equal(200, code)
    local c = json(body)
    assert.equal("a", c.app.db.host)
    assert.equal("<redacted>", c.app.db.password)
    assert.falsy(body:find("hunter2", 1, true))
    body, code = get(s, "/config?path=app.db.pool")
    assert.equal(200, code)
    assert.same({ max = 5 }, json(body))
    body, code = get(s, "/config?path=app.db.password")
    assert.equal(200, code)
    assert.equal('"<redacted>"', body)
    body, code = get(s, "/config?path=app.nothing")
    assert.equal(404, code)
    assert.truthy(json(body).error:find("app.nothing", 1, true))
  end)

  it("lists the history and diffs two revisions, secrets redacted", function()
    H.write(s.dir .. "/app.json", app_json("b", 5):gsub("hunter2", "hunter3"))
    local h = wait_for(function()
      local body = get(s, "/history")
      local t = json(body)
      return #t.revisions == 2 and t
    end)
    assert.truthy(h, "no second revision")
    assert.equal(2, h.current)
    assert.equal("start", h.revisions[1].trigger)
    assert.equal("source:app", h.revisions[2].trigger)
    assert.equal(2, h.revisions[2].changes)
    assert.truthy(h.revisions[2].time:match("^%d%d%d%d%-%d%d%-%d%dT"))
    local body, code = get(s, "/diff?from=1&to=2")
    assert.equal(200, code)
    local d = json(body)
    assert.equal(2, #d.changes)
    assert.same({ path = "app.db.host", kind = "modified", old = "a", new = "b" }, d.changes[1])
    assert.equal("<redacted>", d.changes[2].new)
    assert.is_true(d.changes[2].secret)
    assert.falsy(body:find("hunter", 1, true))
    assert.equal(404, select(2, get(s, "/diff?from=1&to=9")))
    assert.equal(400, select(2, get(s, "/diff?from=x&to=2")))
  end)

  it("explains a revision from the decisions --run --admin keeps, secrets redacted", function()
    local body, code = get(s, "/explain?revision=1")
    assert.equal(200, code, body)
    local x = json(body)
    assert.equal(1, x.revision)
    assert.same({ { path = "app", kind = "added" } }, x.changes)
    assert.truthy(body:find("source delivered", 1, true), body)
    assert.truthy(body:find("<redacted>", 1, true), body)
    assert.falsy(body:find("hunter2", 1, true))
    assert.equal(404, select(2, get(s, "/explain?revision=99")))
    assert.equal(400, select(2, get(s, "/explain")))
  end)

  it("reloads, rolls back (pinning) and unpins", function()
    local body, code = post(s, "/reload")
    assert.equal(200, code, body)
    body, code = post(s, "/reload?component=app")
    assert.equal(200, code, body)
    assert.same({ "app" }, json(body).components)
    assert.equal(404, select(2, post(s, "/reload?component=app,nope")))
    H.write(s.dir .. "/app.json", app_json("b", 6))
    assert.truthy(wait_for(function() return json(get(s, "/status")).revision == 2 end))
    body, code = post(s, "/rollback?revision=1")
    assert.equal(200, code, body)
    assert.is_true(json(body).pinned)
    assert.equal("a", json(get(s, "/config?path=app.db.host")))
    assert.equal(404, select(2, post(s, "/rollback?revision=42")))
    assert.equal(400, select(2, post(s, "/rollback")))
    body, code = post(s, "/unpin")
    assert.equal(200, code, body)
    assert.truthy(wait_for(function() return json(get(s, "/config?path=app.db.host")) == "b" end))
  end)

  it("refuses unknown endpoints and wrong methods", function()
    assert.equal(404, select(2, get(s, "/nothing")))
    assert.equal(405, select(2, get(s, "/reload")))
    assert.equal(405, select(2, post(s, "/config")))
    assert.equal(405, select(2, curl("-X DELETE " .. q("http://" .. s.addr .. "/config"))))
  end)

  it("streams live events as Server-Sent Events, secrets redacted", function()
    local out = s.dir .. "/events.txt"
    local p = io.popen(("env -u LD_PRELOAD curl -sN -m 20 %s > %s 2>&1 & echo $!")
      :format(q("http://" .. s.addr .. "/events"), q(out)))
    local cpid = p:read("l")
    p:close()
    assert.truthy(wait_for(function() return (read(out) or ""):find("reactcfg events") end))
    H.write(s.dir .. "/app.json", app_json("c", 5):gsub("hunter2", "hunter9"))
    local text = wait_for(function()
      local t = read(out) or ""
      return t:find("event: reload.completed", 1, true) and t
    end)
    os.execute("kill " .. cpid .. " 2>/dev/null")
    assert.truthy(text, read(out))
    assert.truthy(text:find("event: commit\ndata: {", 1, true))
    local data = text:match("event: commit\ndata: ([^\n]*)")
    assert.equal(2, json(data).revision)
    assert.falsy(text:find("hunter", 1, true))
  end)

  it("rejects an oversized URL and an oversized body, changing nothing", function()
    local long = ("x"):rep(64 * 1024)
    local _, code = get(s, "/config?path=" .. long)
    assert.truthy(code == 414 or code == 431, "got " .. tostring(code))
    -- Refused by its Content-Length, before it is sent (the client waits for 100).
    local big = s.dir .. "/big.bin"
    H.write(big, ("y"):rep(2 * 1024 * 1024))
    local body
    body, code = post(s, "/rollback?revision=1", "-H 'Expect: 100-continue' --data-binary @"
      .. q(big))
    assert.equal(413, code, body)
    -- Chunked (no length given): refused before it is read.
    H.write(big, ("y"):rep(8 * 1024))
    body, code = post(s, "/rollback?revision=1", "-H 'Transfer-Encoding: chunked' "
      .. "--data-binary @" .. q(big))
    assert.equal(411, code, body)
    assert.is_false(json(get(s, "/history")).pinned)
    assert.equal(200, select(2, get(s, "/healthz")))
  end)

  it("keeps committing while a client sends one byte per second", function()
    local host, port = s.addr:match("^(.*):(%d+)$")
    local slow = ([[import socket,sys,time
c=socket.create_connection((%q,%s))
for b in b"GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a"*100:
    c.send(bytes([b])); time.sleep(1)
]]):format(host, port)
    H.write(s.dir .. "/slow.py", slow)
    local p = io.popen("env -u LD_PRELOAD python3 " .. q(s.dir .. "/slow.py")
      .. " >/dev/null 2>&1 & echo $!")
    local spid = p:read("l")
    p:close()
    os.execute("sleep 1.5") -- the slow client is connected and trickling
    H.write(s.dir .. "/app.json", app_json("slow", 5))
    local ok = wait_for(function()
      return json(get(s, "/config?path=app.db.host")) == "slow"
    end)
    local alive = os.execute("kill -0 " .. spid .. " 2>/dev/null")
    os.execute("kill " .. spid .. " 2>/dev/null")
    assert.truthy(ok, "no commit while the slow client was connected")
    assert.truthy(alive, "the slow client was gone before the commit")
    assert.equal(2, json(get(s, "/status")).revision)
  end)
end)

describe("the admin endpoint scraped by Prometheus", function()
  it("gives Prometheus reactcfg_reload_attempts_total after a reload", function()
    local s = start()
    local port = require("nginx").free_port()
    local pdir = s.dir .. "/prometheus"
    os.execute("mkdir -p " .. q(pdir .. "/data"))
    H.write(pdir .. "/prometheus.yml", ([[
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: reactcfg
    static_configs:
      - targets: ["%s"]
]]):format(s.addr))
    local p = io.popen(("env -u LD_PRELOAD prometheus --config.file=%s "
      .. "--storage.tsdb.path=%s --web.listen-address=127.0.0.1:%d > %s 2>&1 & echo $!")
      :format(q(pdir .. "/prometheus.yml"), q(pdir .. "/data"), port, q(pdir .. "/log")))
    local ppid = p:read("l")
    p:close()
    assert.equal(200, select(2, post(s, "/reload")))
    local query = "http://127.0.0.1:" .. port .. "/api/v1/query?query="
      .. "reactcfg_reload_attempts_total%7Btrigger%3D%22request%22%7D"
    -- Bounded (60 s): Prometheus starts, scrapes every second, and answers.
    local value
    for _ = 1, 240 do
      local body, code = curl(q(query))
      if code == 200 then
        local r = json(body)
        local v = r.data and r.data.result and r.data.result[1]
        if v then
          value = tonumber(v.value[2])
          if value >= 1 then break end
        end
      end
      os.execute("sleep 0.25")
    end
    os.execute("kill " .. ppid .. " 2>/dev/null; while kill -0 " .. ppid
      .. " 2>/dev/null; do sleep 0.05; done")
    s.stop()
    local log = read(pdir .. "/log")
    H.rmdir(s.dir)
    assert.equal(1, value, log)
  end)
end)

describe("the admin endpoint's token", function()
  local s
  after_each(function()
    s.stop()
    H.rmdir(s.dir)
  end)

  it("is needed by every POST: missing or wrong gives 401 and changes nothing", function()
    s = start({ env = "REACTCFG_ADMIN_TOKEN=s3cret" })
    H.write(s.dir .. "/app.json", app_json("b", 5))
    assert.truthy(wait_for(function() return json(get(s, "/status")).revision == 2 end))
    local body, code = post(s, "/rollback?revision=1")
    assert.equal(401, code, body)
    _, code = post(s, "/rollback?revision=1", "-H 'Authorization: Bearer wrong'")
    assert.equal(401, code)
    _, code = post(s, "/unpin", "-H 'Authorization: Bearer s3cre'")
    assert.equal(401, code)
    local h = json(get(s, "/history"))
    assert.is_false(h.pinned)
    assert.equal(2, h.current)
    assert.equal("b", json(get(s, "/config?path=app.db.host")))
    -- reads on loopback need none
    assert.equal(200, select(2, get(s, "/config")))
    body, code = post(s, "/rollback?revision=1", "-H 'Authorization: Bearer s3cret'")
    assert.equal(200, code, body)
    assert.equal("a", json(get(s, "/config?path=app.db.host")))
  end)

  it("is required to bind beyond loopback, and then guards reads too", function()
    s = start({ admin = "0.0.0.0:0" })
    assert.equal("failed", s.addr)
    assert.truthy(s.err():find("not loopback: it needs a token", 1, true), s.err())
    s.stop()
    H.rmdir(s.dir)
    s = start({ admin = "0.0.0.0:0", env = "REACTCFG_ADMIN_TOKEN=s3cret" })
    local port = s.addr:match(":(%d+)$")
    assert.truthy(port, s.err())
    s.addr = "127.0.0.1:" .. port
    assert.equal(401, select(2, get(s, "/config")))
    assert.equal(401, select(2, get(s, "/events")))
    assert.equal(200, select(2, get(s, "/healthz")))
    assert.equal(200, select(2, get(s, "/readyz")))
    assert.equal(200, select(2, get(s, "/config", "-H 'Authorization: Bearer s3cret'")))
  end)
end)

describe("the admin endpoint on a unix socket", function()
  it("creates the socket with mode 0600, serves on it and removes it at the end", function()
    local s = start({ admin = "unix:DIR/admin.sock" })
    local sock = s.dir .. "/admin.sock"
    assert.equal("unix:" .. sock, s.addr, s.err())
    assert.equal("600", (H.sh("stat -c %a " .. q(sock)):gsub("%s+$", "")))
    local body, code = curl("--unix-socket " .. q(sock) .. " http://localhost/status")
    assert.equal(200, code, body)
    assert.equal(1, json(body).revision)
    s.stop()
    assert.is_nil(io.open(sock, "r"))
    H.rmdir(s.dir)
  end)
end)

describe("the policy's admin key", function()
  it("starts the endpoint with the engine, its token from the named variable", function()
    local policy = POLICY:gsub("components = {", [[admin = { listen = "unix:" .. SOCK,
    token_env = "APP_ADMIN_TOKEN" },
  components = {]], 1)
    local dir = H.tmpdir("admin-policy")
    local sock = dir .. "/a.sock"
    policy = policy:gsub("SOCK", ("%q"):format(sock))
    local s = start({ policy = policy, admin = "", env = "APP_ADMIN_TOKEN=tok",
      admin_from_policy = true })
    -- The policy names its socket by absolute path: wait for it.
    assert.truthy(wait_for(function()
      return select(2, curl("--unix-socket " .. q(sock) .. " http://localhost/healthz")) == 200
    end), s.err())
    local base = "--unix-socket " .. q(sock) .. " "
    assert.equal(401, select(2, curl(base .. "-X POST http://localhost/unpin")))
    assert.equal(200, select(2, curl(base .. "-X POST -H 'Authorization: Bearer tok' "
      .. "http://localhost/unpin")))
    s.stop()
    H.rmdir(s.dir)
    H.rmdir(dir)
  end)

  it("is checked when the policy loads", function()
    local err = H.load_error([[local rc = require "reactcfg"
return rc.policy { admin = { listen = 9090 }, components = {} }]])
    assert.truthy(err:find("admin.listen must be", 1, true), err)
    err = H.load_error([[local rc = require "reactcfg"
return rc.policy { admin = { listen = "127.0.0.1:1", token = "x" }, components = {} }]])
    assert.truthy(err:find("admin: unknown key 'token'", 1, true), err)
  end)
end)

describe("reactcfg-lua attach", function()
  local s
  before_each(function() s = start() end)
  after_each(function()
    s.stop()
    H.rmdir(s.dir)
  end)

  it("runs -e code and prints its result as JSON", function()
    local out, code = H.sh(q(bin) .. " attach " .. q(s.addr) .. " -e 'status()' --json")
    assert.equal(0, code, out)
    assert.equal(1, json(out).revision)
    out, code = H.sh(q(bin) .. " attach " .. q(s.addr)
      .. " -e 'get(\"app.db\")' --json")
    assert.equal(0, code, out)
    assert.same({ host = "a", pool = { max = 5 }, password = "<redacted>" }, json(out))
    out, code = H.sh(q(bin) .. " attach " .. q(s.addr) .. " -e 'explain(1)' --json")
    assert.equal(0, code, out)
    assert.equal(1, json(out).revision)
    out, code = H.sh(q(bin) .. " attach " .. q(s.addr) .. " -e 'rollback(99)'")
    assert.equal(1, code)
    assert.truthy(out:find("404", 1, true), out)
  end)

  it("is a REPL on a terminal: status, get, history, reload, events until Ctrl-C", function()
    -- Each line waits for its answer and the next prompt (keys typed ahead of the
    -- prompt may be lost while the line editor switches the terminal's mode).
    local function line(text, want)
      return { { send = text .. "\r" }, { expect_re = want }, { expect_re = "(?m)^> " } }
    end
    local steps = {
      { expect = "> " },
      line("status().revision", "(?m)^1\\s*$"),
      line("get('app.db.pool.max')", "(?m)^5\\s*$"),
      line("#history().revisions", "(?m)^1\\s*$"),
      line("reload('app').reload", '"requested"'),
      -- A writer that changes the file every 200 ms (at most 30 s) until told to stop,
      -- so that events(), whenever its stream is open, sees a reload complete.
      line("os.execute('sh " .. s.dir .. "/writer.sh &')", "true"),
      { send = "events()\r" }, { expect = "reload.completed" },
      { send = "\3" }, { expect_re = "(?m)^> " },
      line("unpin().pinned", "false"),
      { eof = 0 },
    }
    local flat = {}
    for _, st in ipairs(steps) do
      if st[1] then
        for _, x in ipairs(st) do flat[#flat + 1] = x end
      else
        flat[#flat + 1] = st
      end
    end
    steps = flat
    H.write(s.dir .. "/writer.sh", ([[
for i in $(seq 150); do
  [ -e %s/stop ] && exit 0
  printf '{"db": {"host": "h%%s", "pool": {"max": 5}}}' "$i" > %s/app.json
  sleep 0.2
done
]]):format(q(s.dir), q(s.dir)))
    local out, code = H.sh("env NO_COLOR=1 TERM=xterm REACTCFG_HISTORY=" .. q(s.dir .. "/hist")
      .. " python3 " .. q(driver) .. " " .. q(cjson.encode(steps)) .. " -- " .. q(bin)
      .. " attach " .. q(s.addr))
    H.write(s.dir .. "/stop", "")
    assert.equal(0, code, out)
  end)
end)
