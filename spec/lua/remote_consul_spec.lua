-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.consul against spec/servers/consul_server.py (Consul has no Debian package; the
-- server follows Consul's published API): blocking queries and every rule of the
-- research notes (§3.1).
local H = require "spec.lua.helpers"

-- Starts the fake Consul; returns { port, pid, url(path), put, delete, fault, requests,
-- stop }.
local function consul(args)
  local s = H.fake_server("consul_server.py", args)
  local base = s.addr
  local function curl(method, path, body, header)
    local out = H.sh(("env -u LD_PRELOAD curl -s -X %s %s %s '%s%s'"):format(method,
      header and ("-H '" .. header .. "'") or "",
      body and ("--data-binary '" .. body .. "'") or "", base, path))
    return out
  end
  function s.put(key, value, token)
    return curl("PUT", "/v1/kv/" .. key, value, token and ("X-Consul-Token: " .. token))
  end
  function s.delete(key, token)
    return curl("DELETE", "/v1/kv/" .. key, nil, token and ("X-Consul-Token: " .. token))
  end
  function s.control(name, spec) return curl("POST", "/_test/" .. name, spec or "{}") end
  -- GET requests to `path` among the last 200 the server saw.
  function s.gets(path) return s.requests("GET " .. path) end
  return s
end

local policy = H.source_policy("flags", "consul")

describe("rc.consul", function()
  local srv, e
  after_each(function()
    H.cleanup()
    if srv then srv.stop() end
    srv = nil
  end)

  it("reads a key and follows its changes by blocking queries", function()
    srv = consul()
    srv.put("app/flags", '{"beta": false}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', wait = '10s'"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags.beta") == false end))
    srv.put("app/flags", '{"beta": true}')
    assert.truthy(e:run_until(function() return e:get("flags.beta") == true end, "2s"))
    -- Blocking, not polling: about one query per change, not one per interval.
    e:run("500ms")
    assert.truthy(srv.gets("/v1/kv/app/flags") <= 4)
    assert.equal(0, #H.events(e, "source.error"))
  end)

  it("awaits a missing key (404 with an index) and sees it appear", function()
    srv = consul()
    e = H.engine(policy(("addr = %q, key = 'app/later', wait = '10s'"):format(srv.addr),
      ", default = { on = false }"))
    -- The 404's index is taken: the next query blocks on it.
    assert.truthy(e:run_until(function() return srv.gets("/v1/kv/app/later") >= 2 end))
    assert.same({ on = false }, e:get("flags"))
    assert.equal(0, #H.events(e, "source.error"))
    srv.put("app/later", '{"on": true}')
    assert.truthy(e:run_until(function() return e:get("flags.on") == true end, "2s"))
    srv.delete("app/later")
    assert.truthy(e:run_until(function() return e:get("flags.on") == false end, "2s"))
  end)

  it("does not treat a new index with the same data as a change", function()
    srv = consul()
    srv.put("app/flags", '{"n": 1}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', wait = '10s'"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags.n") == 1 end))
    e:commits()
    srv.put("app/flags", '{"n": 1}')   -- new ModifyIndex, same value
    srv.put("app/other", '"x"')
    e:run("500ms")
    assert.equal(0, #e:commits())
    assert.truthy(srv.gets("/v1/kv/app/flags") >= 3) -- it did wake up and re-query
  end)

  it("resets the index when it goes backwards (snapshot restore)", function()
    srv = consul()
    for i = 1, 20 do srv.put("app/noise", tostring(i)) end
    srv.put("app/flags", '{"n": 1}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', wait = '1s'"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags.n") == 1 end))
    srv.control("reset_index", '{"index": 2}')
    srv.put("app/flags", '{"n": 2}')  -- index 3: below the client's; only a reset sees it
    assert.truthy(e:run_until(function() return e:get("flags.n") == 2 end, "4s"))
  end)

  it("reads without blocking after a connection failure (a restarted server's index "
    .. "starts low)", function()
    srv = consul()
    for i = 1, 20 do srv.put("app/noise", tostring(i)) end
    srv.put("app/flags", '{"n": 1}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', wait = '60s', poll = false, "
      .. "backoff = { min = '100ms', max = '200ms' }"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags.n") == 1 end))
    assert.truthy(e:run_until(function()          -- a blocking query on index 21 waits
      return srv.gets("/v1/kv/app/flags?index=") >= 1 end))
    local port = srv.port
    srv.stop()
    os.execute(("while kill -0 %d 2>/dev/null; do sleep 0.05; done"):format(srv.pid))
    assert.truthy(e:run_until(function() return #H.events(e, "source.error") > 0 end))
    -- The same address, a server with no past: its index starts at 1, far below 21.
    srv = consul("--port " .. port)
    srv.put("app/flags", '{"n": 2}')
    assert.truthy(e:run_until(function() return e:get("flags.n") == 2 end, "10s"))
  end)

  it("turns a prefix into a table of relative keys", function()
    srv = consul()
    srv.put("app/db", '{"host": "h", "port": 5432}')
    srv.put("app/beta", "true")
    srv.put("app/dir/", "")
    srv.put("other/x", "1")
    e = H.engine(policy(("addr = %q, prefix = 'app/', wait = '10s'"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags.beta") == true end))
    assert.same({ db = { host = "h", port = 5432 }, beta = true }, e:get("flags"))
    srv.put("app/new", '"v"')
    assert.truthy(e:run_until(function() return e:get("flags.new") == "v" end, "2s"))
  end)

  it("sends the ACL token in X-Consul-Token; 403 is an error event", function()
    srv = consul("--token s3cr3t-acl")
    srv.put("app/flags", '{"ok": true}', "s3cr3t-acl")
    e = H.engine(policy(("addr = %q, key = 'app/flags', token_env = 'RC_SPEC_CONSUL_TOKEN',"
      .. " backoff = { min = '50ms', max = '100ms' }"):format(srv.addr)))
    local errs
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    e:setenv("RC_SPEC_CONSUL_TOKEN", "wrong")
    e:run("300ms")
    local more = H.events(e, "source.error")
    assert.truthy(#more > 0)
    assert.matches("HTTP 403", more[#more].message)
    e:setenv("RC_SPEC_CONSUL_TOKEN", "s3cr3t-acl")
    assert.truthy(e:run_until(function() return e:get("flags.ok") == true end))
    for _, ev in ipairs(e:events()) do assert.not_matches("s3cr3t", ev.message) end
    -- Never as ?token= (it would end up in access logs).
    local seen = H.sh(("env -u LD_PRELOAD curl -s %s/_test/requests"):format(srv.addr))
    assert.truthy(seen:find("/v1/kv/app/flags", 1, true))
    assert.is_nil(seen:find("token=", 1, true))
  end)

  it("never blocks on an index below 1 (a 404 that says X-Consul-Index: 0)", function()
    srv = consul()
    srv.put("app/flags", '{"n": 1}')
    srv.control("fail", '{"status": 404, "count": 1, "path": "/v1/kv/app/flags", '
      .. '"method": "GET", "body": "", "headers": {"X-Consul-Index": "0"}}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', wait = '10s'"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags.n") == 1 end))
    assert.truthy(srv.gets("/v1/kv/app/flags?index=1&") >= 1)
    assert.equal(0, srv.gets("/v1/kv/app/flags?index=0"))
  end)

  it("reports a prefix filtered by ACLs instead of delivering an empty table", function()
    srv = consul("--token s3cr3t-acl")
    srv.put("app/a", "1", "s3cr3t-acl")
    e = H.engine(policy(("addr = %q, prefix = 'app/', "
      .. "backoff = { min = '50ms', max = '100ms' }"):format(srv.addr),
      ", default = { a = 0 }"))
    local errs
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("filtered the results by ACL", errs[1].message)
    assert.same({ a = 0 }, e:get("flags"))
  end)

  it("asks for stale reads when told to", function()
    srv = consul()
    srv.put("app/flags", "1")
    e = H.engine(policy(("addr = %q, key = 'app/flags', consistency = 'stale'")
      :format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags") == 1 end))
    assert.truthy(srv.gets("/v1/kv/app/flags?stale") >= 1)
  end)

  it("reads again from the leader when a stale answer is older than max_stale", function()
    srv = consul()
    srv.put("app/flags", "1")
    srv.control("leader", '{"known_leader": true, "last_contact_ms": 7000}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', consistency = 'stale', "
      .. "max_stale = '1s'"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags") == 1 end))
    assert.truthy(srv.gets("/v1/kv/app/flags?stale") >= 1)
    -- The leader's answer (no ?stale) is the one delivered.
    local out = H.sh(("env -u LD_PRELOAD curl -s %s/_test/requests"):format(srv.addr))
    assert.truthy(out:find('"GET /v1/kv/app/flags"', 1, true), out)
  end)

  it("treats 400 as a configuration error without hammering", function()
    srv = consul()
    srv.control("fail", '{"status": 400, "count": 0, "message": "Invalid wait time"}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', backoff = { min = '20ms', "
      .. "max = '5s' }"):format(srv.addr)))
    local errs
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("Consul rejected the request", errs[1].message)
    e:run("1s")
    assert.equal(1, srv.gets("/v1/kv/app/flags"))
  end)

  it("rate-limits queries when the index churns", function()
    srv = consul()
    -- A refill far slower than the churn: whatever the machine's speed, the two burst
    -- tokens are all the queries there can be: the first read and the blocking query
    -- after it. Without the limit every write would cost a query.
    e = H.engine(policy(("addr = %q, key = 'app/missing', rate_limit = '60s'")
      :format(srv.addr)))
    assert.truthy(e:run_until(function() return srv.gets("/v1/kv/app/missing") >= 2 end))
    -- Every write anywhere wakes a query on a missing key, with the same (absent) data.
    for i = 1, 40 do
      srv.put("app/churn", tostring(i))
      e:run("25ms")
    end
    assert.equal(2, srv.gets("/v1/kv/app/missing"))
    assert.truthy(#H.events(e, "source.error") == 0)
  end)

  it("keeps the last value on a malformed response and a dropped connection", function()
    srv = consul()
    srv.put("app/flags", '{"n": 1}')
    e = H.engine(policy(("addr = %q, key = 'app/flags', wait = '1s', backoff = { min = "
      .. "'50ms', max = '100ms' }"):format(srv.addr)))
    assert.truthy(e:run_until(function() return e:get("flags.n") == 1 end))
    -- Faults are taken when a request arrives: they hit the client's next query, and a
    -- body is only read when the index moved.
    local only_gets = '"count": 1, "path": "/v1/kv/app/flags", "method": "GET"'
    srv.control("malformed", "{" .. only_gets .. "}")
    srv.put("app/flags", '{"n": 2}')
    assert.truthy(e:run_until(function() return e:get("flags.n") == 2 end))
    e:run("100ms")
    srv.put("app/flags", '{"n": 3}')
    local errs = {}
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("app/flags", errs[1].file)
    assert.truthy(e:run_until(function() return e:get("flags.n") == 3 end))
    -- Two: curl retries once on a fresh connection when a kept-alive one dies silently.
    srv.control("drop", '{"count": 2, "path": "/v1/kv/app/flags", "method": "GET"}')
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("server closed the connection", errs[1].message)
    srv.put("app/flags", '{"n": 4}')
    assert.truthy(e:run_until(function() return e:get("flags.n") == 4 end))
    assert.truthy(#H.events(e, "source.recovered") >= 1)
  end)

  it("rejects keys Consul would refuse at load time", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.consul { key = "a", wiat = "1s" } end)
    assert.matches("'%.%.' segments", H.load_error(policy("key = 'app/../secret'")))
  end)
end)

-- Hybrid watching: blocking queries broken by spec/servers/consul_server.py's
-- /_test/blocking switch (only requests carrying ?index break, the way a proxy that
-- cuts long requests breaks them) while plain GETs work.
describe("rc.consul hybrid", function()
  local srv
  after_each(function()
    H.cleanup()
    if srv then srv.stop() end
    srv = nil
  end)

  -- Every event the engine reports, kept (e:events() hands each out once).
  local function recorder(e)
    local all = {}
    local rec = {}
    function rec.pull()
      for _, ev in ipairs(e:events()) do all[#all + 1] = ev end
      return all
    end
    -- Messages of the events named `name` matching `pat` (plain text when `plain`).
    function rec.matching(name, pat, plain)
      local out = {}
      for _, ev in ipairs(rec.pull()) do
        if ev.event == name and (not pat or (ev.message or ""):find(pat, 1, plain)) then
          out[#out + 1] = ev.message
        end
      end
      return out
    end
    function rec.wait(name, pat, plain, timeout)
      local got
      e:run_until(function()
        got = rec.matching(name, pat, plain)[1]
        return got ~= nil
      end, timeout or "8s")
      return got
    end
    return rec
  end

  -- Requests the server saw (its last 200): blocking ones (carrying index=) and plain
  -- GETs of `path`.
  local function seen(path)
    local out = H.sh(("env -u LD_PRELOAD curl -s '%s/_test/requests'"):format(srv.addr))
    local blocking, plain = 0, 0
    for r in out:gmatch('"GET ([^"]*)"') do
      if r:find(path, 1, true) == 1 then
        if r:find("index=", 1, true) then blocking = blocking + 1 else plain = plain + 1 end
      end
    end
    return blocking, plain
  end

  local function opts(extra)
    return ("addr = %q, key = 'app/flags', wait = '2s', backoff = { min = '100ms', "
      .. "max = '400ms' }%s"):format(srv.addr, extra or "")
  end

  -- A server holding app/flags = {"n": 1} and an engine on it whose blocking query is
  -- held by the server by the time this returns (engine, recorder).
  local function held(extra)
    srv = consul()
    srv.put("app/flags", '{"n": 1}')
    local e = H.engine(policy(opts(extra)))
    local ev = recorder(e)
    assert.truthy(e:run_until(function() return e:get("flags.n") == 1 end))
    -- The blocking query after the first read is sent (and held by the server).
    assert.truthy(e:run_until(function() return srv.gets("/v1/kv/app/flags") >= 2 end))
    return e, ev
  end

  for _, case in ipairs {
    { name = "cut", fault = '{"mode": "cut"}' },
    { name = "held past the client's timeout", fault = '{"mode": "hang", "ms": 30000}',
      extra = ", timeout = '300ms'" },
    { name = "answered 502 by a proxy", fault = '{"mode": "fail", "status": 502}' },
  } do
    it("polls while blocking queries are " .. case.name .. ", blocks again after", function()
      local e, ev = held(", poll = '200ms'" .. (case.extra or ""))
      srv.control("blocking", case.fault)
      -- The query the server already holds answers this write; the next one breaks.
      srv.put("app/flags", '{"n": 2}')
      assert.truthy(e:run_until(function() return e:get("flags.n") == 2 end, "5s"))
      local msg = ev.wait("component.state", "polling every")
      assert.truthy(msg, "no component.state event about polling")
      assert.matches("^consul blocking query failed %(.+%); polling every 200ms while "
        .. "retrying it$", msg)
      -- Changes still arrive, by plain GETs.
      srv.put("app/flags", '{"n": 3}')
      assert.truthy(e:run_until(function() return e:get("flags.n") == 3 end, "5s"))
      srv.put("app/flags", '{"n": 4}')
      assert.truthy(e:run_until(function() return e:get("flags.n") == 4 end, "5s"))
      local _, plain = seen("/v1/kv/app/flags")
      assert.truthy(plain >= 3, "plain GETs: " .. plain)
      -- The first broken blocking query is an ordinary error; the second one, followed
      -- by a plain GET that works, starts the polling: nothing else is an error.
      assert.equal(1, #ev.matching("source.error"))
      assert.truthy(#ev.matching("source.recovered") >= 1)
      -- Fixed: a blocking retry answers, polling stops, changes come by blocking again.
      local blocking_before = seen("/v1/kv/app/flags")
      srv.control("blocking", '{"mode": "off"}')
      assert.equal("blocking queries work again; polling stopped",
        ev.wait("component.state", "work again", true))
      assert.equal(1, #ev.matching("component.state", "polling every", true))
      e:run("300ms")
      local blocking_mid, plain_mid = seen("/v1/kv/app/flags")
      srv.put("app/flags", '{"n": 5}')
      assert.truthy(e:run_until(function() return e:get("flags.n") == 5 end, "5s"))
      e:run("600ms")
      local blocking_after, plain_after = seen("/v1/kv/app/flags")
      assert.truthy(blocking_mid > blocking_before)
      assert.truthy(blocking_after > blocking_mid, "no blocking query after the fix")
      assert.equal(plain_mid, plain_after) -- no plain GET since: polling stopped
      assert.equal(1, #ev.matching("source.error"))
    end)
  end

  it("keeps polling while only early answers get through (a proxy cutting long queries)",
    function()
    local e, ev = held(", poll = '200ms'")
    -- Queries open longer than 600 ms are cut; one that a change answers sooner is not.
    srv.control("blocking", '{"mode": "cut_after", "ms": 600}')
    srv.put("app/flags", '{"n": 2}')
    assert.truthy(ev.wait("component.state", "polling every", true))
    -- Changes every ~250 ms: retried blocking queries come back early, with data, and
    -- that is no proof that a long one would survive.
    for i = 3, 10 do
      srv.put("app/flags", ('{"n": %d}'):format(i))
      e:run("250ms")
    end
    assert.truthy(e:run_until(function() return e:get("flags.n") == 10 end, "5s"))
    assert.same({}, ev.matching("component.state", "work again", true))
    assert.truthy(seen("/v1/kv/app/flags") >= 4) -- blocking retries went on meanwhile
    -- Quiet, and no proxy: a retried query lasts its whole wait; polling stops.
    srv.control("blocking", '{"mode": "off"}')
    assert.equal("blocking queries work again; polling stopped",
      ev.wait("component.state", "work again", true))
  end)

  it("reports an ordinary failure when the plain GET fails too", function()
    local e, ev = held(", poll = '200ms'")
    -- Every GET of the key fails from now on: blocking queries and plain ones.
    srv.control("fail", '{"status": 500, "count": 0, "path": "/v1/kv/app/flags", '
      .. '"method": "GET"}')
    srv.put("app/flags", '{"n": 2}') -- answers the held query
    assert.truthy(ev.wait("source.error", "HTTP 500", true))
    -- The plain GETs tried after the broken blocking queries fail too.
    assert.truthy(e:run_until(function() return select(2, seen("/v1/kv/app/flags")) >= 3 end,
      "5s"))
    e:run("300ms")
    assert.truthy(#ev.matching("source.error", "HTTP 500", true) >= 2)
    assert.same({}, ev.matching("component.state", "polling", true))
    assert.equal(2, e:get("flags.n")) -- the held query delivered; nothing since
    -- (Ending the outage may race with a plain GET, so polling may start then; that is
    -- the first part's business.)
    srv.control("clear")
    srv.put("app/flags", '{"n": 3}')
    assert.truthy(e:run_until(function() return e:get("flags.n") == 3 end, "5s"))
    assert.truthy(ev.wait("source.recovered"))
  end)

  it("without the fallback (poll = false): an error, then one plain read, then blocking "
    .. "again; no polling", function()
    -- No circuit breaker: its cool-down would outlast this test.
    local e, ev = held(", poll = false, circuit = false")
    srv.control("blocking", '{"mode": "cut"}')
    srv.put("app/flags", '{"n": 2}')
    assert.truthy(e:run_until(function() return e:get("flags.n") == 2 end, "5s"))
    local blocking0, plain0 = seen("/v1/kv/app/flags")
    srv.put("app/flags", '{"n": 3}')
    assert.truthy(ev.wait("source.error"))
    -- The read after a failure never blocks: it sees the change made meanwhile.
    assert.truthy(e:run_until(function() return e:get("flags.n") == 3 end, "5s"))
    e:run("1s")
    local blocking, plain = seen("/v1/kv/app/flags")
    assert.truthy(plain > plain0)
    assert.truthy(blocking > blocking0 + 1) -- and blocking was tried again after each
    assert.same({}, ev.matching("component.state", "polling", true))
    srv.control("blocking", '{"mode": "off"}')
    srv.put("app/flags", '{"n": 4}')
    assert.truthy(e:run_until(function() return e:get("flags.n") == 4 end, "5s"))
  end)

  it("checks the poll option", function()
    for _, bad in ipairs { "poll = true", "poll = '5ms'", "poll = 'soon'" } do
      assert.matches("poll", H.load_error(policy("key = 'a', " .. bad)))
    end
  end)
end)
