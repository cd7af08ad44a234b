-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.etcd against real etcd (Debian's etcd-server, started by
-- spec/servers/etcd_cluster.py): the initial range, the watch stream, compaction,
-- member death in a three-member cluster, and auth with token refresh. The protocol
-- facts these rely on are in spec/servers/ETCD-GATEWAY.md.
local H = require "spec.lua.helpers"

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
  local out = {}
  local function ch(k) return B64:sub(k + 1, k + 1) end
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    out[#out + 1] = ch(n >> 18 & 63) .. ch(n >> 12 & 63) .. (b and ch(n >> 6 & 63) or "=")
      .. (c and ch(n & 63) or "=")
  end
  return table.concat(out)
end

-- A shell command without the ASan preload of a sanitizer run (it hangs some tools).
local function sh(cmd) return H.sh("unset LD_PRELOAD; " .. cmd) end

-- POSTs a JSON body (no single quotes in it: keys and values travel as base64).
local function post(url, body, token)
  local auth = token and ("-H 'Authorization: " .. token .. "'") or ""
  return (sh(("curl -s -m 10 -X POST -H 'Content-Type: application/json'"
    .. " %s --data-binary '%s' '%s'"):format(auth, body, url)))
end

-- Runs `cmd` in the background with a watchdog that kills it (signal `sig`) once this
-- Lua process is gone, so a crashed spec run leaves no server behind. Returns the
-- first line the command prints (after its pid) and its pid.
local function spawn(cmd, sig, read_line)
  local p = io.popen(("unset LD_PRELOAD; %s & pid=$!; echo $pid; (while kill -0 $PPID "
    .. "2>/dev/null; do sleep 1; done; kill -%s $pid) >/dev/null 2>&1 </dev/null &")
    :format(cmd, sig))
  local pid = tonumber(p:read("l"))
  local line = read_line and p:read("l")
  p:close()
  return pid, line
end

-- Starts a cluster; returns an object with endpoints and the operations the specs use.
local function cluster(members, opts)
  opts = opts or {}
  local pid, line = spawn(("%s python3 -u spec/servers/etcd_cluster.py "
    .. "--members %d %s 2>/dev/null"):format(opts.env or "", members,
    opts.auth and ("--auth " .. opts.auth) or ""), "TERM", true)
  local c = { pid = pid, mine = {} }
  function c.stop()
    for _, p in ipairs(c.mine) do sh("kill -9 " .. p .. " 2>/dev/null") end
    -- SIGTERM: etcd_cluster.py kills its members and removes its directory.
    sh(("kill %d 2>/dev/null; for i in $(seq 100); do kill -0 %d 2>/dev/null || break;"
      .. " sleep 0.05; done"):format(pid, pid))
  end
  local list = line and line:match("^ENDPOINTS (.*)$")
  if not list then
    c.stop()
    error("etcd_cluster.py did not start: " .. tostring(line))
  end
  c.endpoints = {}
  for ep in list:gmatch("[^,]+") do c.endpoints[#c.endpoints + 1] = ep end
  c.live = {}
  for i = 1, #c.endpoints do c.live[i] = true end

  local function first_live()
    for i = 1, #c.endpoints do if c.live[i] then return i end end
  end
  function c.call(path, body, i)
    return post(c.endpoints[i or c.writer or first_live()] .. path, body, c.token)
  end
  function c.login(user, pw)
    c.token = nil -- an expired token would make etcd refuse the request itself
    local out = c.call("/v3/auth/authenticate",
      ('{"name":"%s","password":"%s"}'):format(user, pw))
    c.token = assert(out:match('"token":"([^"]+)"'), out)
  end
  -- Returns the new revision.
  function c.put(key, value)
    local out = c.call("/v3/kv/put",
      ('{"key":"%s","value":"%s"}'):format(b64(key), b64(value)))
    return assert(tonumber(out:match('"revision":"(%d+)"')), out)
  end
  -- Puts every key = value of `kv` in one transaction (one revision).
  function c.txn(kv)
    local ops = {}
    for k, v in pairs(kv) do
      ops[#ops + 1] = ('{"request_put":{"key":"%s","value":"%s"}}'):format(b64(k), b64(v))
    end
    local out = c.call("/v3/kv/txn", '{"success":[' .. table.concat(ops, ",") .. ']}')
    assert(out:match('"succeeded":true'), out)
  end
  function c.delete(key)
    local out = c.call("/v3/kv/deleterange", ('{"key":"%s"}'):format(b64(key)))
    assert(out:match('"deleted":"1"'), out)
  end
  function c.compact(rev)
    local out = c.call("/v3/kv/compaction",
      ('{"revision":"%d","physical":true}'):format(rev))
    assert(out:match('"header"'), out)
  end
  -- The member's etcd process: the child of etcd_cluster.py (or ours) serving port i.
  local function member_pid(i)
    local port = c.endpoints[i]:match(":(%d+)$")
    local out = sh("ps -eo pid=,args=")
    for p, args in out:gmatch("(%d+) ([^\n]*)") do
      if args:find("--listen-client-urls http://127.0.0.1:" .. port .. " ", 1, true) then
        return tonumber(p), args
      end
    end
  end
  function c.kill(i)
    local p, args = member_pid(i)
    assert(p, "no etcd for member " .. i)
    c.args = c.args or {}
    c.args[i] = args
    sh("kill -9 " .. p)
    c.live[i] = false
    if c.writer == i then c.writer = nil end
  end
  -- Starts a killed member again (same ports and data dir); waits until it serves. Its
  -- output goes beside its data dir, so a member that does not come back says why. A
  -- restart replays the member's log and holds an election: on CI's loaded machine (other
  -- servers' specs beside it) that once took more than 10 s, hence the 60 s bound.
  function c.restart(i)
    local log = c.args[i]:match("%-%-data%-dir (%S+)") .. ".restart.log"
    local p = spawn(("%s >>%s 2>&1 </dev/null"):format(c.args[i], log), "9", false)
    c.mine[#c.mine + 1] = p
    c.live[i] = true
    local deadline = os.time() + 60
    repeat
      -- Status answers without a token; a leader means it can serve.
      local out = post(c.endpoints[i] .. "/v3/maintenance/status", "{}")
      if out:match('"leader":"%d+"') then return end
      sh("sleep 0.1")
    until os.time() > deadline
    error(("member %d did not come back within 60 s; its log ends:\n%s"):format(i,
      sh("tail -n 20 " .. log)))
  end
  -- Index of the leader among the live members (waits for an election).
  function c.leader()
    for _ = 1, 200 do
      for i = 1, #c.endpoints do
        if c.live[i] then
          local out = post(c.endpoints[i] .. "/v3/maintenance/status", "{}")
          local lead = out:match('"leader":"(%d+)"')
          local me = out:match('"member_id":"(%d+)"')
          if lead and lead == me then return i end
        end
      end
      sh("sleep 0.05")
    end
    error("no leader")
  end
  -- Indexes of the members this Lua process holds an established connection to.
  function c.connected()
    local me = sh("echo $PPID"):match("%d+")
    local out = sh("ss -tnpH state established")
    local set = {}
    for i, ep in ipairs(c.endpoints) do
      local port = ep:match(":(%d+)$")
      for l in out:gmatch("[^\n]+") do
        if l:find("127.0.0.1:" .. port .. " ", 1, true)
          and l:find("pid=" .. me .. ",", 1, true) then
          set[#set + 1] = i
          break
        end
      end
    end
    return set
  end
  return c
end

local policy = H.source_policy("app", "etcd")

local function endpoints(c)
  local q = {}
  for _, ep in ipairs(c.endpoints) do q[#q + 1] = ("%q"):format(ep) end
  return "endpoints = { " .. table.concat(q, ", ") .. " }"
end

-- Every commit's changes as "kind path" strings.
local function changes(commits)
  local out = {}
  for _, cm in ipairs(commits) do
    local one = {}
    for _, ch in ipairs(cm.changes) do one[#one + 1] = ch.kind .. " " .. ch.path end
    table.sort(one)
    out[#out + 1] = table.concat(one, ", ")
  end
  return out
end

describe("rc.etcd", function()
  after_each(H.cleanup)

  it("checks its options at load time", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.etcd { key = "a", endpoint = "x" } end)
    for _, bad in ipairs { "key = 'a', prefix = 'b'", "key = 'a', endpoints = {}",
      "key = 'a', endpoints = 'ftp://x'", "key = 'a', user = 'u'", "prefix = 'a', page = 0",
      "prefix = 'a', page = '10'" } do
      assert.matches("etcd", H.load_error(policy(bad)))
    end
  end)

  describe("on one member", function()
    local c
    setup(function() c = cluster(1) end)
    teardown(function() if c then c.stop() end end)

    it("reads a key, and a prefix as a table of relative keys", function()
      c.put("one/flags", '{"beta": true}')
      c.put("one/p/db", '{"host": "h"}')
      c.put("one/p/n", "5")
      c.put("one/q", "0") -- outside the prefix "one/p/"
      local e = H.engine(policy(endpoints(c) .. ", key = 'one/flags'"))
      assert.truthy(e:run_until(function() return e:get("app.beta") == true end))
      local e2 = H.engine(policy(endpoints(c) .. ", prefix = 'one/p/'"))
      assert.truthy(e2:run_until(function() return e2:get("app.n") == 5 end))
      assert.same({ db = { host = "h" }, n = 5 }, e2:get("app"))
      -- A missing key is absent: the default holds.
      local e3 = H.engine(policy(endpoints(c) .. ", key = 'one/missing'",
        ", default = { d = 1 }"))
      e3:run("300ms")
      assert.same({ d = 1 }, e3:get("app"))
      for _, x in ipairs { e, e2, e3 } do
        assert.equal(0, #H.events(x, "source.error"))
      end
    end)

    it("applies puts and deletes from the watch, one commit each", function()
      c.put("two/a", "1")
      c.put("two/b", "2")
      local e = H.engine(policy(endpoints(c) .. ", prefix = 'two/'"))
      assert.truthy(e:run_until(function() return e:get("app.b") == 2 end))
      e:run("100ms")
      e:commits()
      c.put("two/a", "10")
      assert.same({ "modified app.a" }, changes(H.commits(e, 1)))
      c.delete("two/b")
      assert.same({ "removed app.b" }, changes(H.commits(e, 1)))
      c.put("two/c", '"x"')
      assert.same({ "added app.c" }, changes(H.commits(e, 1)))
      assert.same({ a = 10, c = "x" }, e:get("app"))
      -- A transaction is one revision, one message, one commit.
      c.txn { ["two/a"] = "11", ["two/d"] = "12" }
      assert.same({ "added app.d, modified app.a" }, changes(H.commits(e, 1)))
      assert.same({ a = 11, c = "x", d = 12 }, e:get("app"))
      -- The same value written again is a new revision but no change.
      c.put("two/a", "11")
      assert.same({}, changes(H.commits(e, 0)))
      assert.equal(0, #H.events(e, "source.error"))
    end)

    it("resyncs after a compaction without losing or repeating a change", function()
      local rev = c.put("three/n", "1")
      local e = H.engine(policy(endpoints(c) .. ", key = 'three/n', "
        .. "backoff = { min = '20ms', max = '100ms' }"))
      assert.truthy(e:run_until(function() return e:get("app") == 1 end))
      e:run("100ms")
      e:commits()
      -- A live watch is not disturbed by a compaction: the next put arrives as usual.
      c.compact(c.put("three/n", "2"))
      rev = c.put("three/n", "3")
      local got = H.commits(e, 1)
      assert.equal(1, #got)
      assert.equal(3, e:get("app"))
      -- The watch breaks (the member restarts) while history the source has not seen is
      -- compacted: resuming from its revision is refused, so it reads the key again.
      e:events()
      c.kill(1)
      c.restart(1)
      c.put("three/n", "4")
      rev = c.put("three/n", "5")
      c.compact(rev)
      assert.same({ "modified app" }, changes(H.commits(e, 1)))
      assert.equal(5, e:get("app"))
      local evs = e:events()
      local resynced = false
      for _, ev in ipairs(evs) do
        if ev.event == "component.state" and ev.message:match("compacted") then
          resynced = true
        end
      end
      assert.truthy(resynced)
      -- And the watch goes on from the range's revision.
      c.put("three/n", "6")
      assert.same({ "modified app" }, changes(H.commits(e, 1)))
      assert.equal(6, e:get("app"))
    end)
  end)

  describe("on three members", function()
    local c
    setup(function() c = cluster(3) end)
    teardown(function() if c then c.stop() end end)

    it("fails over when its member dies, then when the leader dies", function()
      c.put("four/n", "1")
      local e = H.engine(policy(endpoints(c) .. ", prefix = 'four/', timeout = '3s', "
        .. "backoff = { min = '20ms', max = '200ms' }"))
      assert.truthy(e:run_until(function() return e:get("app.n") == 1 end))
      local on = c.connected()
      assert.equal(1, #on)
      c.kill(on[1])
      c.writer = c.leader()
      c.put("four/n", "2")
      assert.truthy(e:run_until(function() return e:get("app.n") == 2 end, "10s"))
      local seen = {}
      assert.truthy(e:run_until(function()
        for _, ev in ipairs(e:events()) do seen[ev.event] = (seen[ev.event] or 0) + 1 end
        return seen["source.recovered"]
      end))
      assert.truthy(seen["source.error"] >= 1)
      local killed = on[1]
      c.restart(killed)
      -- Now the leader (perhaps the member the source moved to).
      c.kill(c.leader())
      c.writer = c.leader()
      c.put("four/n", "3")
      c.put("four/m", "4")
      assert.truthy(e:run_until(function() return e:get("app.m") == 4 end, "10s"))
      assert.same({ n = 3, m = 4 }, e:get("app"))
    end)

    it("leaves a member that lost its quorum (hasleader) and resumes with it", function()
      -- No circuit breaker: its cool-down would outlast this test's outage.
      local e = H.engine(policy(endpoints(c) .. ", prefix = 'four/', timeout = '3s', "
        .. "backoff = { min = '20ms', max = '200ms' }, circuit = false"))
      assert.truthy(e:run_until(function() return e:get("app.m") == 4 end))
      local on = c.connected()
      assert.equal(1, #on)
      -- Alone, its member has no leader: a plain watch would stay open and silent.
      local killed
      for i = 1, #c.endpoints do
        if i ~= on[1] and c.live[i] then
          c.kill(i)
          killed = i
        end
      end
      local no_leader = false
      assert.truthy(e:run_until(function()
        for _, ev in ipairs(H.events(e, "source.error")) do
          no_leader = no_leader or ev.message:match("no leader") ~= nil
        end
        return no_leader
      end, "10s"))
      assert.equal(4, e:get("app.m")) -- the last value stays
      c.restart(killed)
      c.writer = c.leader()
      c.put("four/m", "5")
      assert.truthy(e:run_until(function() return e:get("app.m") == 5 end, "10s"))
    end)
  end)

  describe("with auth", function()
    local c
    setup(function()
      -- Tokens expire after 2 s without use (etcd reads flags from ETCD_* variables).
      c = cluster(1, { auth = "alice:s3cret-pw", env = "ETCD_AUTH_TOKEN_TTL=2" })
      c.login("alice", "s3cret-pw")
    end)
    teardown(function() if c then c.stop() end end)

    it("authenticates and authenticates again when the token expired", function()
      c.put("five/n", "1")
      local e = H.engine(policy(endpoints(c) .. ", key = 'five/n', user = 'alice', "
        .. "password_env = 'RC_SPEC_ETCD_PW', backoff = { min = '20ms', max = '100ms' }"))
      local function error_matching(pat)
        return e:run_until(function()
          for _, ev in ipairs(H.events(e, "source.error")) do
            if ev.message:match(pat) then return true end
          end
        end)
      end
      assert.truthy(error_matching("RC_SPEC_ETCD_PW is not set"))
      e:setenv("RC_SPEC_ETCD_PW", "wrong")
      assert.truthy(error_matching("refused the user or password"))
      e:setenv("RC_SPEC_ETCD_PW", "s3cret-pw")
      assert.truthy(e:run_until(function() return e:get("app") == 1 end))
      -- An open watch keeps delivering past the token's expiry.
      sh("sleep 2.5")
      c.login("alice", "s3cret-pw")
      c.put("five/n", "2")
      assert.truthy(e:run_until(function() return e:get("app") == 2 end))
      -- A new watch (after the member restarts) needs a new token: the old one is gone.
      e:events()
      c.kill(1)
      c.restart(1)
      c.login("alice", "s3cret-pw")
      c.put("five/n", "3")
      assert.truthy(e:run_until(function() return e:get("app") == 3 end, "10s"))
      for _, ev in ipairs(e:events()) do
        assert.not_matches("s3cret", ev.message or "")
      end
    end)
  end)
end)

-- Hybrid watching: the watch stream broken by spec/servers/watch_breaking_proxy.py
-- (unary calls pass, /v3/watch is cut, cut right after etcd's first message, or held)
-- in front of a real etcd member.
describe("rc.etcd hybrid", function()
  local cjson = require "cjson"
  local c, px
  setup(function()
    c = cluster(1)
    local pid, line = spawn(("python3 -u spec/servers/watch_breaking_proxy.py --target %s "
      .. "2>/dev/null"):format(c.endpoints[1]), "TERM", true)
    local port = line and line:match("^LISTENING (%d+)")
    if not port then
      sh("kill " .. pid)
      error("watch_breaking_proxy.py did not start: " .. tostring(line))
    end
    px = { pid = pid, url = "http://127.0.0.1:" .. port }
    function px.mode(m)
      local out = sh(("curl -s -m 5 -X POST --data-binary '{\"mode\":\"%s\"}' '%s/_proxy/break'")
        :format(m, px.url))
      assert(out:match('"ok"'), out)
    end
    function px.stats()
      return cjson.decode((sh(("curl -s -m 5 '%s/_proxy/stats'"):format(px.url))))
    end
  end)
  teardown(function()
    if px then sh("kill " .. px.pid .. " 2>/dev/null") end
    if c then c.stop() end
  end)
  after_each(function()
    H.cleanup()
    if px then px.mode("off") end
  end)

  -- Every event the engine reports, kept (e:events() hands each out once).
  local function recorder(e)
    local all, rec = {}, {}
    function rec.matching(name, pat)
      for _, ev in ipairs(e:events()) do all[#all + 1] = ev end
      local out = {}
      for _, ev in ipairs(all) do
        if ev.event == name and (not pat or (ev.message or ""):find(pat, 1, true)) then
          out[#out + 1] = ev.message
        end
      end
      return out
    end
    function rec.wait(name, pat, timeout)
      local got
      e:run_until(function()
        got = rec.matching(name, pat)[1]
        return got ~= nil
      end, timeout or "10s")
      return got
    end
    return rec
  end

  local function opts(prefix, extra)
    return ("endpoints = %q, prefix = %q, backoff = { min = '100ms', max = '400ms' }%s")
      :format(px.url, prefix, extra or "")
  end

  for _, case in ipairs {
    { mode = "cut", what = "cannot be established" },
    { mode = "created", what = "dies right after it is established" },
    { mode = "hang", what = "is held without an answer", extra = ", timeout = '1s'" },
  } do
    it("polls with ranges while the watch " .. case.what .. ", watches again after",
      function()
        local p = "hy-" .. case.mode .. "/"
        c.put(p .. "a", "1")
        px.mode(case.mode)
        local e = H.engine(policy(opts(p, ", poll = '200ms'" .. (case.extra or ""))))
        local ev = recorder(e)
        assert.truthy(e:run_until(function() return e:get("app.a") == 1 end))
        local msg = ev.wait("component.state", "polling every")
        assert.truthy(msg, "no component.state event about polling")
        assert.matches("^etcd watch failed %(.+%); polling every 200ms while retrying it$",
          msg)
        -- Changes arrive by polling, diffed: nothing lost, nothing repeated.
        c.put(p .. "b", "2")
        assert.truthy(e:run_until(function() return e:get("app.b") == 2 end, "5s"))
        c.put(p .. "a", "10")
        c.delete(p .. "b")
        c.put(p .. "c", '"x"')
        assert.truthy(e:run_until(function() return e:get("app.c") == "x" end, "5s"))
        e:run("300ms")
        assert.same({ a = 10, c = "x" }, e:get("app"))
        e:commits()
        e:run("600ms") -- several polls of unchanged data: no commit
        assert.same({}, e:commits())
        local st = px.stats()
        assert.truthy((st.unary["/v3/kv/range"] or 0) >= 4)
        assert.truthy(st.watch_broken + st.watch_forwarded >= 2) -- the watch is retried
        -- One ordinary error (the first broken watch); then polling works.
        assert.equal(1, #ev.matching("source.error"))
        -- Fixed: a watch stays up, polling stops, changes come through the watch.
        local forwarded = st.watch_forwarded
        px.mode("off")
        assert.equal("the etcd watch works again; polling stopped",
          ev.wait("component.state", "works again"))
        assert.equal(1, #ev.matching("component.state", "polling every"))
        local ranges = px.stats().unary["/v3/kv/range"]
        c.put(p .. "a", "11")
        assert.truthy(e:run_until(function() return e:get("app.a") == 11 end, "5s"))
        c.put(p .. "d", "4")
        assert.truthy(e:run_until(function() return e:get("app.d") == 4 end, "5s"))
        e:run("600ms")
        st = px.stats()
        assert.truthy(st.watch_forwarded > forwarded)
        assert.equal(ranges, st.unary["/v3/kv/range"]) -- no poll since
        assert.same({ a = 11, c = "x", d = 4 }, e:get("app"))
        assert.equal(1, #ev.matching("source.error"))
      end)
  end

  it("reads a prefix larger than a page, page by page, then watches", function()
    local kv = {}
    for i = 1, 25 do kv[("paged/k%02d"):format(i)] = tostring(i) end
    c.txn(kv)
    local function ranges() return (px.stats().unary or {})["/v3/kv/range"] or 0 end
    local before = ranges()
    local e = H.engine(policy(("endpoints = %q, prefix = 'paged/', page = 10")
      :format(px.url)))
    assert.truthy(e:run_until(function() return e:get("app.k25") == 25 end))
    local n = 0
    for _ in pairs(e:get("app")) do n = n + 1 end
    assert.equal(25, n)
    assert.equal(3, ranges() - before)   -- 10 + 10 + 5 keys
    c.put("paged/k26", "26")             -- the watch starts after the pages' revision
    assert.truthy(e:run_until(function() return e:get("app.k26") == 26 end))
    assert.equal(0, #H.events(e, "source.error"))
  end)

  it("resumes the watch from the last polled revision: no change lost or repeated",
    function()
      local p = "hy-resume/"
      c.put(p .. "n", "0")
      px.mode("cut")
      local e = H.engine(policy(opts(p, ", poll = '200ms'")))
      local ev = recorder(e)
      assert.truthy(ev.wait("component.state", "polling every"))
      for i = 1, 5 do c.put(p .. "n", tostring(i)) end
      assert.truthy(e:run_until(function() return e:get("app.n") == 5 end, "5s"))
      e:run("300ms")
      e:commits()
      px.mode("off")
      assert.truthy(ev.wait("component.state", "works again"))
      -- Each write now is one watch message, one commit: none merged, none twice.
      for i = 6, 8 do
        c.put(p .. "n", tostring(i))
        assert.same({ "modified app.n" }, changes(H.commits(e, 1)))
      end
      assert.equal(8, e:get("app.n"))
    end)

  it("keeps the old behaviour with poll = false: errors and backoff only", function()
    local p = "hy-off/"
    c.put(p .. "a", "1")
    px.mode("cut")
    -- No circuit breaker: its cool-down would outlast this test.
    local e = H.engine(policy(opts(p, ", poll = false, circuit = false")))
    local ev = recorder(e)
    assert.truthy(e:run_until(function() return e:get("app.a") == 1 end))
    assert.truthy(ev.wait("source.error"))
    local ranges = px.stats().unary["/v3/kv/range"]
    c.put(p .. "a", "2")
    e:run("1500ms")
    assert.equal(1, e:get("app.a")) -- no polling: the change waits for the watch
    local st = px.stats()
    assert.equal(ranges, st.unary["/v3/kv/range"])
    assert.truthy(st.watch_broken >= 2)
    assert.truthy(#ev.matching("source.error") >= 2)
    assert.same({}, ev.matching("component.state", "polling"))
    px.mode("off")
    -- The watch resumes from its revision: the change made meanwhile arrives.
    assert.truthy(e:run_until(function() return e:get("app.a") == 2 end, "5s"))
  end)

  it("reports an ordinary failure when ranges fail too (etcd down)", function()
    local p = "hy-down/"
    c.put(p .. "a", "1")
    local e = H.engine(policy(opts(p, ", poll = '200ms', circuit = false")))
    local ev = recorder(e)
    assert.truthy(e:run_until(function() return e:get("app.a") == 1 end))
    e:run("1200ms") -- the watch has been up a while
    local ranges = px.stats().unary["/v3/kv/range"]
    c.kill(1)
    assert.truthy(ev.wait("source.error"))
    e:run("1500ms") -- broken watches, then ranges, all failing
    assert.truthy(#ev.matching("source.error") >= 2)
    assert.truthy(px.stats().unary["/v3/kv/range"] > ranges) -- ranges were tried
    assert.same({}, ev.matching("component.state", "polling"))
    c.restart(1)
    c.put(p .. "a", "2")
    -- (No check for "polling" from here on: a watch retried through the proxy just before
    -- etcd listened again, then a range just after, is polling for a moment, rightly.)
    assert.truthy(e:run_until(function() return e:get("app.a") == 2 end, "10s"))
    assert.truthy(#ev.matching("source.recovered") >= 1)
  end)
end)
