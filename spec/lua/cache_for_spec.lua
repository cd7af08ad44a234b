-- SPDX-License-Identifier: MIT (see LICENSE)
-- cache_for (fetch once, hold the answer, fetch again) and a component's retry, against
-- spec/servers/consul_server.py read as plain HTTP (`?raw`): the server counts requests.
local H = require "spec.lua.helpers"

local function server()
  local s = H.fake_server("consul_server.py")
  function s.put(key, value)
    H.sh(("env -u LD_PRELOAD curl -s -X PUT --data-binary '%s' '%s/v1/kv/%s'")
      :format(value, s.addr, key))
  end
  function s.gets(key) return s.requests("GET /v1/kv/" .. key) end
  return s
end

local function policy(addr, extra, cache)
  return ([[
local rc = require "reactcfg"
return rc.policy { %scomponents = {
  limits = { source = rc.http { url = "%s/v1/kv/app/limits?raw", interval = "100ms",
                                format = "json" },
             %s },
} }
]]):format(cache and ("cache = %q, "):format(cache) or "", addr, extra)
end

describe("cache_for", function()
  local srv
  after_each(function()
    H.cleanup()
    if srv then srv.stop() end
    srv = nil
  end)

  it("asks once, holds the answer for cache_for without polling, then asks again",
    function()
    srv = server()
    srv.put("app/limits", '{"rps": 1}')
    local e = H.engine(policy(srv.addr, 'cache_for = "1500ms"'))
    assert.equal(1, e:get("limits.rps"))
    local held = H.wait_event(e, "component.state")
    assert.truthy(held and held.message:find("holding the value for 1500 ms", 1, true))
    srv.put("app/limits", '{"rps": 2}')
    e:run("800ms")            -- eight poll intervals: not one request
    assert.equal(1, e:get("limits.rps"))
    assert.equal(1, srv.gets("app/limits"))
    assert.truthy(e:run_until(function() return e:get("limits.rps") == 2 end, "3s"))
    assert.equal(2, srv.gets("app/limits"))
    e:run("300ms")            -- stopped again after the second answer
    assert.equal(2, srv.gets("app/limits"))
  end)

  it("without cache_for the same source polls every interval", function()
    srv = server()
    srv.put("app/limits", '{"rps": 1}')
    local e = H.engine(policy(srv.addr, ""))
    e:run("800ms")
    assert.truthy(srv.gets("app/limits") >= 4)
  end)

  it("keeps the held value and retries when the refetch fails", function()
    srv = server()
    srv.put("app/limits", '{"rps": 1}')
    local e = H.engine(policy(srv.addr,
      'cache_for = "500ms", retry = { min = "100ms", max = "200ms", circuit = false }'))
    local port = srv.port
    srv.stop()
    assert.truthy(H.wait_event(e, "source.error"))
    e:run("1500ms")   -- the default backoff (1 s doubling) would now wait seconds
    assert.equal(1, e:get("limits.rps"))
    srv = H.fake_server("consul_server.py", "--port " .. port)
    function srv.put(key, value)
      H.sh(("env -u LD_PRELOAD curl -s -X PUT --data-binary '%s' '%s/v1/kv/%s'")
        :format(value, srv.addr, key))
    end
    srv.put("app/limits", '{"rps": 3}')
    -- retry's 100-200 ms backoff, not the source's default of seconds
    assert.truthy(e:run_until(function() return e:get("limits.rps") == 3 end, "800ms"))
  end)

  it("starts from an answer an earlier run saved less than cache_for ago, asking nothing",
    function()
    srv = server()
    srv.put("app/limits", '{"rps": 1}')
    local cache = H.tmpdir("cachefor")
    local e = H.engine(policy(srv.addr, 'cache_for = "3s"', cache))
    assert.equal(1, e:get("limits.rps"))
    -- The pause (the source stopped) is when the answer is written to the cache.
    local held = H.wait_event(e, "component.state")
    assert.truthy(held and held.message:find("holding the value", 1, true))
    H.cleanup()
    srv.put("app/limits", '{"rps": 2}')
    e = H.engine(policy(srv.addr, 'cache_for = "3s"', cache))
    assert.equal(1, e:get("limits.rps"))      -- from disk, still fresh
    assert.equal(1, srv.gets("app/limits"))   -- only the first run asked
    local ev = H.wait_event(e, "component.state")
    assert.truthy(ev and ev.message:find("using the value fetched", 1, true))
    -- when the three seconds of the first answer are over, it asks
    assert.truthy(e:run_until(function() return e:get("limits.rps") == 2 end, "5s"))
    assert.equal(2, srv.gets("app/limits"))
    H.rmdir(cache)
  end)

  it("asks again at start when the saved answer is older than cache_for", function()
    srv = server()
    srv.put("app/limits", '{"rps": 1}')
    local cache = H.tmpdir("cachefor")
    local e = H.engine(policy(srv.addr, 'cache_for = "300ms"', cache))
    assert.truthy(H.wait_event(e, "component.state"))   -- answered and saved
    H.cleanup()
    e = nil
    srv.put("app/limits", '{"rps": 2}')
    H.sh("sleep 0.4")
    e = H.engine(policy(srv.addr, 'cache_for = "300ms"', cache))
    assert.truthy(e:run_until(function() return e:get("limits.rps") == 2 end, "3s"))
    H.rmdir(cache)
  end)
end)
