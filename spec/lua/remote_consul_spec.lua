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

local function policy(opts, extra)
  return ([[
local rc = require "reactcfg"
return rc.policy { components = {
  flags = { source = rc.consul { %s }%s },
} }
]]):format(opts, extra or "")
end

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
    e:run("300ms")
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
    e = H.engine(policy(("addr = %q, key = 'app/missing', rate_limit = '250ms'")
      :format(srv.addr)))
    e:run("100ms")
    local function now_ms() return tonumber((H.sh("date +%s%3N"))) end
    local t0 = now_ms()
    -- Every write anywhere wakes a query on a missing key, with the same (absent) data.
    for i = 1, 40 do
      srv.put("app/churn", tostring(i))
      e:run("25ms")
    end
    local elapsed = now_ms() - t0
    local n = srv.gets("/v1/kv/app/missing")
    -- Two burst tokens plus one per 250 ms of churn, not one query per write.
    local bound = 3 + elapsed // 250
    assert.truthy(n <= bound and n < 40, ("%d queries in %d ms"):format(n, elapsed))
    assert.truthy(n >= 3, "queries: " .. n)
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
    local dir = H.tmpdir("consul-bad")
    H.write(dir .. "/policy.lua", policy("key = 'app/../secret'"))
    local eng, err = rc.engine(dir .. "/policy.lua")
    if eng then
      local ok
      ok, err = eng:start()
      eng:close()
    end
    H.rmdir(dir)
    assert.matches("'%.%.' segments", tostring(err))
  end)
end)
