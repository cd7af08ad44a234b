-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.http against a real nginx: conditional GET, 304, errors with the last value kept,
-- recovery, malformed and oversized bodies, Retry-After, bearer tokens.
local H = require "spec.lua.helpers"
local N = require "spec.lua.nginx"

local function policy(opts)
  return ([[
local rc = require "reactcfg"
return rc.policy { components = {
  limits = { source = rc.http { %s } },
} }
]]):format(opts)
end

-- Runs until pred() holds (at most `limit`), checking every 50 ms of loop time.
local function run_until(e, pred, limit)
  return e:run_until(pred, limit or "5s")
end

describe("rc.http", function()
  local srv, e
  local t0 = os.time() - 100
  before_each(function() srv = N.start([[
    location = /busy.json { add_header Retry-After 2 always; return 429; }
    location = /fail.json { return 500; }
    location /no-etag/ { etag off; }
    location /no-validators/ { etag off; if_modified_since off; }
    location = /secure.json {
      if ($http_authorization != "Bearer s3cr3t-token") { return 401; }
      try_files /limits.json =404;
    }
]]) end)
  after_each(function()
    H.cleanup()
    if srv then srv:close() end
  end)

  it("delivers the initial value and detects a change on the next poll", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '100ms'"):format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    srv:write("limits.json", '{"rps": 200}', t0 + 1)
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 200 end))
    assert.equal(0, #H.events(e, "source.error"))
  end)

  it("sends the validators back and treats 304 as no change", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '50ms'"):format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    e:commits()
    e:run("600ms")
    -- Several polls, all answered 304 by nginx, none of them a commit.
    assert.truthy(#srv:access_lines("GET /limits.json 304") >= 3)
    assert.equal(1, #srv:access_lines("GET /limits.json 200"))
    assert.equal(0, #e:commits())
    assert.equal(0, #H.events(e, "source.error"))
  end)

  it("sends Last-Modified back as If-Modified-Since when there is no ETag", function()
    os.execute("mkdir -p '" .. srv.dir .. "/www/no-etag'")
    srv:write("no-etag/limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '50ms'")
      :format(srv:url("no-etag/limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    e:run("600ms")
    assert.truthy(#srv:access_lines("GET /no%-etag/limits.json 304") >= 3)
    assert.equal(1, #srv:access_lines("GET /no%-etag/limits.json 200"))
    srv:write("no-etag/limits.json", '{"rps": 20}', t0 + 5)
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 20 end))
  end)

  it("drops unchanged bodies from a server without validators (content compared)",
    function()
    os.execute("mkdir -p '" .. srv.dir .. "/www/no-validators'")
    srv:write("no-validators/limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '50ms'")
      :format(srv:url("no-validators/limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    e:commits()
    e:run("600ms")
    assert.truthy(#srv:access_lines("GET /no%-validators/limits.json 200") >= 4)
    assert.equal(0, #e:commits())
    srv:write("no-validators/limits.json", '{"rps": 30}', t0)
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 30 end))
  end)

  it("keeps the last value while the server is down and recovers when it returns",
    function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '100ms', backoff = { min = '50ms', "
      .. "max = '200ms' }"):format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    e:events()
    srv:stop()
    local errors = {}
    assert.truthy(run_until(e, function()
      for _, ev in ipairs(H.events(e, "source.error")) do errors[#errors + 1] = ev end
      return #errors >= 2
    end))
    assert.matches("connection refused", errors[1].message)
    assert.equal("limits", errors[1].component)
    assert.equal(10, e:get("limits.rps"))
    srv:write("limits.json", '{"rps": 30}', t0 + 2)
    srv:restart()
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 30 end))
    assert.truthy(#H.events(e, "source.recovered") >= 1)
  end)

  it("opens the circuit after failures in a row, probes after the cool-down, closes on "
    .. "success", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '100ms', backoff = { min = '20ms', "
      .. "max = '40ms' }, circuit = { failures = 3, cooldown = '1s' }")
      :format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    e:events()
    srv:stop()
    local errors, opened = 0, nil
    assert.truthy(run_until(e, function()
      for _, ev in ipairs(e:events()) do
        if ev.event == "source.error" then errors = errors + 1 end
        if ev.event == "component.state" and ev.message:find("circuit open") then
          opened = ev
        end
      end
      return opened ~= nil
    end))
    assert.equal(3, errors)
    assert.matches("circuit open after 3 failures in a row", opened.message)
    -- Open: no request (so no new error) for the cool-down, though backoff is 40 ms.
    e:run("700ms")
    assert.equal(0, #H.events(e, "source.error"))
    srv:write("limits.json", '{"rps": 30}', t0 + 2)
    srv:restart()
    local closed
    assert.truthy(run_until(e, function()
      closed = closed or H.events(e, "component.state")[1]
      return closed ~= nil and e:get("limits.rps") == 30
    end))
    assert.matches("circuit closed", closed.message)
  end)

  it("recovers within seconds by default: retries at most 5 s apart, and a cool-down no "
    .. "longer", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    -- Only the first delay is shortened: the ceiling and the breaker keep their defaults.
    e = H.engine(policy(("url = %q, interval = '100ms', backoff = { min = '5ms' }")
      :format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    srv:stop()
    local opened
    assert.truthy(run_until(e, function()
      for _, ev in ipairs(e:events()) do
        if ev.event == "component.state" and ev.message:find("circuit open") then
          opened = ev
        end
      end
      return opened ~= nil
    end))
    local cooldown, cap = opened.message:match("no request for (%d+) ms .- at most (%d+) ms")
    assert.truthy(cooldown, opened.message)
    assert.truthy(tonumber(cap) <= 5000, opened.message)
    assert.truthy(tonumber(cooldown) <= tonumber(cap), opened.message)
  end)

  it("starts from the cached value while the server is down, then takes the server's",
    function()
    srv:write("limits.json", '{"rps": 10}', t0)
    local body = ([[
local rc = require "reactcfg"
return rc.policy {
  cache = "cache",
  components = {
    limits = { source = rc.http { url = %q, interval = '100ms',
                                  backoff = { min = '50ms', max = '100ms' } },
               startup = { mode = "%s", timeout = "2s" } },
  },
}
]]):format(srv:url("limits.json"), "%s")
    -- First run: the server answers; the value is cached.
    local dir
    e, dir = H.engine(body:format("wait"))
    assert.equal(10, e:get("limits.rps"))
    e:close()
    -- Server down at start, without the cache: start waits, then goes without it.
    srv:stop()
    H.write(dir .. "/policy.lua", body:format("wait"))
    local rc = require "reactcfg"
    e = assert(rc.engine(dir .. "/policy.lua"))
    assert(e:start())
    assert.is_nil(e:get("limits"))   -- refused at once: start does not wait further
    assert.matches("connection refused", H.events(e, "source.error")[1].message)
    e:close()
    -- Server down at start, with the cache: the cached value at once, marked stale.
    H.write(dir .. "/policy.lua", body:format("cached"))
    e = assert(rc.engine(dir .. "/policy.lua"))
    assert(e:start())
    assert.equal(10, e:get("limits.rps"))
    assert.matches("stale until the source answers",
      H.events(e, "component.state")[1].message)
    srv:write("limits.json", '{"rps": 20}', t0 + 5)
    srv:restart()
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 20 end))
    e:close()
  end)

  it("reports recovery on a 304 after an outage without a commit", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '100ms', backoff = { min = '50ms', "
      .. "max = '100ms' }"):format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    srv:stop()
    assert.truthy(run_until(e, function() return #H.events(e, "source.error") > 0 end))
    e:commits()
    srv:restart()
    assert.truthy(run_until(e, function() return #H.events(e, "source.recovered") > 0 end))
    assert.equal(0, #e:commits())
    assert.equal(10, e:get("limits.rps"))
  end)

  it("keeps the last value on a malformed body and takes the fixed one", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '100ms', backoff = { min = '50ms', "
      .. "max = '100ms' }"):format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    e:events()
    srv:write("limits.json", '{"rps": 1', t0 + 1)
    local errs
    assert.truthy(run_until(e, function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("limits.json", errs[1].file)
    assert.equal(10, e:get("limits.rps"))
    srv:write("limits.json", '{"rps": 11}', t0 + 2)
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 11 end))
  end)

  it("refuses a body larger than max_bytes", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '100ms', max_bytes = 64, "
      .. "backoff = { min = '50ms', max = '100ms' }"):format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    e:events()
    srv:write("limits.json", '{"rps": 12, "pad": "' .. ("x"):rep(200) .. '"}', t0 + 1)
    local errs
    assert.truthy(run_until(e, function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("larger than 64 bytes", errs[1].message)
    assert.equal(10, e:get("limits.rps"))
  end)

  it("reports HTTP errors and honours Retry-After on 429", function()
    e = H.engine(policy(("url = %q, interval = '50ms', backoff = { min = '50ms', "
      .. "max = '100ms' }"):format(srv:url("busy.json"))))
    local errs
    assert.truthy(run_until(e, function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("HTTP 429", errs[1].message)
    e:run("1500ms")
    -- Without Retry-After the backoff (<= 100 ms) would have asked about 15 times.
    assert.equal(1, #srv:access_lines("GET /busy.json 429"))
    assert.is_nil(e:get("limits"))
  end)

  it("sends the token from token_env as a bearer token and never shows it", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    e = H.engine(policy(("url = %q, interval = '100ms', token_env = 'RC_SPEC_HTTP_TOKEN', "
      .. "backoff = { min = '50ms', max = '100ms' }"):format(srv:url("secure.json"))))
    assert.truthy(run_until(e, function() return #H.events(e, "source.error") > 0 end))
    e:setenv("RC_SPEC_HTTP_TOKEN", "wrong")
    local seen = {}
    assert.truthy(run_until(e, function()
      for _, ev in ipairs(e:events()) do seen[#seen + 1] = ev end
      return #srv:access_lines("secure.json 401") >= 2
    end))
    e:setenv("RC_SPEC_HTTP_TOKEN", "s3cr3t-token")
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    for _, ev in ipairs(seen) do assert.not_matches("s3cr3t", ev.message) end
    for _, ev in ipairs(e:events()) do assert.not_matches("s3cr3t", ev.message) end
  end)

  it("parses a large body off the loop and delivers it", function()
    local items = {}
    for i = 1, 200000 do items[i] = tostring(i) end
    srv:write("big.json", '{"items": [' .. table.concat(items, ",") .. ']}', t0)
    e = H.engine(policy(("url = %q"):format(srv:url("big.json"))))
    assert.truthy(run_until(e, function()
      return e:get("limits.items[199999]") == 200000   -- paths index from 0
    end))
    assert.equal(0, #H.events(e, "source.error"))
  end)

  it("closes cleanly while a large body is being parsed", function()
    local items = {}
    for i = 1, 300000 do items[i] = tostring(i) end
    srv:write("big.json", '{"items": [' .. table.concat(items, ",") .. ']}', t0)
    e = H.engine(policy(("url = %q"):format(srv:url("big.json"))))
    -- Close as soon as nginx has sent it: the parse is then likely still running.
    assert.truthy(run_until(e, function() return #srv:access_lines("big.json 200") > 0 end))
    H.cleanup()
  end)

  it("keeps polling through a policy reload and stops the source it replaced", function()
    srv:write("limits.json", '{"rps": 10}', t0)
    srv:write("other.json", '{"rps": 20}', t0)
    local dir
    e, dir = H.engine(policy(("url = %q, interval = '50ms'"):format(srv:url("limits.json"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 10 end))
    local function reloaded()
      local ok = e:run_until(function() return #H.events(e, "policy.reloaded") > 0 end)
      return ok
    end
    -- Same source description: the running source is kept (only 304s follow).
    H.write(dir .. "/policy.lua", "-- edited\n" ..
      policy(("url = %q, interval = '50ms'"):format(srv:url("limits.json"))))
    assert.truthy(reloaded())
    e:run("300ms")
    assert.equal(1, #srv:access_lines("GET /limits.json 200"))
    -- Another URL: a new source; the old one asks nothing more once retired.
    H.write(dir .. "/policy.lua",
      policy(("url = %q, interval = '50ms'"):format(srv:url("other.json"))))
    assert.truthy(reloaded())
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 20 end))
    local before = #srv:access_lines("GET /limits.json")
    e:run("300ms")
    assert.equal(before, #srv:access_lines("GET /limits.json"))
  end)

  it("picks the format by extension when the server says octet-stream", function()
    srv:write("app.yaml", "rps: 7\nname: api\n", t0)
    e = H.engine(policy(("url = %q"):format(srv:url("app.yaml"))))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 7 end))
    assert.equal("api", e:get("limits.name"))
  end)

  it("rejects bad options at load time", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.http { url = "http://x", intreval = "1s" } end)
    local dir = H.tmpdir("http-bad")
    H.write(dir .. "/policy.lua", policy("url = 'ftp://x/y'"))
    local eng, err = rc.engine(dir .. "/policy.lua")
    if eng then
      local ok
      ok, err = eng:start()
      assert.falsy(ok)
      eng:close()
    end
    H.rmdir(dir)
    assert.matches("http:// or https://", tostring(err))
  end)

  it("reports a 500 and keeps retrying", function()
    e = H.engine(policy(("url = %q, interval = '100ms'"):format(srv:url("fail.json"))))
    local errs
    assert.truthy(run_until(e, function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("HTTP 500", errs[1].message)
    assert.truthy(run_until(e, function()
      return #srv:access_lines("fail.json 500") >= 2
    end))
  end)
end)

describe("rc.http with slow and TLS servers", function()
  local srv, e
  after_each(function()
    H.cleanup()
    if srv then srv:close() end
    srv = nil
  end)

  it("fails a request slower than its timeout and keeps the last value", function()
    srv = N.start([[
    location = /slow.json { default_type application/json; echo_sleep 3; echo '{"a":1}'; }
]])
    -- scripts/setup installs the echo module: without it this test fails, it does not
    -- quietly pass.
    assert.truthy(srv.echo, "nginx has no echo module (libnginx-mod-http-echo)")
    e = H.engine(policy(("url = %q, timeout = '300ms'"):format(srv:url("slow.json"))))
    local errs
    assert.truthy(run_until(e, function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("timed out after 300 ms", errs[1].message)
    assert.is_nil(e:get("limits"))
  end)

  it("verifies TLS: refuses an unknown CA, accepts it with ca_file or insecure", function()
    srv = N.start("", { tls = true })
    srv:write("limits.json", '{"rps": 5}')
    local url = srv:tls_url("limits.json")
    e = H.engine(policy(("url = %q"):format(url)))
    local errs
    assert.truthy(run_until(e, function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("TLS certificate verification failed", errs[1].message)
    H.cleanup()
    e = H.engine(policy(("url = %q, ca_file = %q"):format(url, srv.cert)))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 5 end))
    H.cleanup()
    e = H.engine(policy(("url = %q, insecure = true"):format(url)))
    assert.truthy(run_until(e, function() return e:get("limits.rps") == 5 end))
  end)

  -- Five sources of one server polling every 100 ms, until each has polled 3 times.
  local function five_polling(version)
    local lines = { 'local rc = require "reactcfg"', "local c = {}" }
    for i = 1, 5 do
      srv:write(("f%d.json"):format(i), ('{"n": %d}'):format(i))
      lines[#lines + 1] = ("c.f%d = { source = rc.http { url = %q, ca_file = %q, "
        .. "interval = '100ms'%s } }"):format(i, srv:tls_url(("f%d.json"):format(i)),
        srv.cert, version and (", http_version = %q"):format(version) or "")
    end
    lines[#lines + 1] = "return rc.policy { components = c }"
    e = H.engine(table.concat(lines, "\n"))
    assert.truthy(run_until(e, function()
      for i = 1, 5 do
        if #srv:access_lines(("/f%d.json$"):format(i), "proto") < 3 then return false end
      end
      return true
    end))
    for i = 1, 5 do assert.equal(i, e:get(("f%d.n"):format(i))) end
    local protocols, connections = {}, {}
    for _, line in ipairs(srv:access_lines(nil, "proto")) do
      local proto, conn = line:match("^(%S+) (%d+) ")
      protocols[proto] = true
      connections[conn] = true
    end
    local nconn = 0
    for _ in pairs(connections) do nconn = nconn + 1 end
    return protocols, nconn
  end

  it("polls over HTTP/1.1 by default, also from a server that offers HTTP/2", function()
    srv = N.start("", { tls = true })
    local protocols = five_polling(nil)
    assert.same({ ["HTTP/1.1"] = true }, protocols)
  end)

  it("with http_version = \"2\" multiplexes every source of a server on one connection",
    function()
    srv = N.start("", { tls = true })
    local protocols, nconn = five_polling("2")
    assert.same({ ["HTTP/2.0"] = true }, protocols)
    assert.equal(1, nconn)
  end)

  it("refuses a bad http_version, and \"2\" on http:// where libcurl cannot reuse such "
    .. "connections", function()
    assert.matches('http_version must be "1.1" or "2"',
      H.load_error(policy("url = 'http://127.0.0.1:1/x.json', http_version = '3'")))
    assert.matches('http_version must be "1.1" or "2"',
      H.load_error(policy("url = 'http://127.0.0.1:1/x.json', http_version = 2")))
    -- libcurl before 8.0 (Debian 12 has 7.88) fails every request after the first on a
    -- reused HTTP/2 connection without TLS (curl issue 10634).
    -- The version comes from pkg-config, not the curl program: under the ASan build's
    -- LD_PRELOAD, `curl --version` never returns.
    local major = tonumber(H.sh("env -u LD_PRELOAD pkg-config --modversion libcurl")
      :match("^(%d+)%."))
    assert.truthy(major, "pkg-config knows no libcurl")
    local err = H.load_error(policy("url = 'http://127.0.0.1:1/x.json', http_version = '2'"))
    if major and major < 8 then
      assert.matches('http_version = "2" on an http:// URL needs libcurl 8.0', err)
    else
      assert.equal("nil", err)
    end
  end)
end)
