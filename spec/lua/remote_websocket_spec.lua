-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.websocket against a real WebSocket server (spec/servers/ws_server.py on Debian's
-- python3-websockets, started here on a free port): messages as documents, the token,
-- headers and URL credentials (never shown), and each fault with the last good value
-- kept, an error event and recovery: the server closing, the server killed mid-watch
-- and restarted on the same port, malformed frames, an oversized message, a document
-- that does not parse, a refused upgrade, a server that stops answering (dead peer);
-- TLS with a self-signed certificate (refused without its CA, accepted with ca_file or
-- insecure); a start from the cache while the server is down; the circuit breaker.
local H = require "spec.lua.helpers"

local QUICK = "backoff = { min = '20ms', max = '100ms' }, circuit = false"

local policy = H.source_policy("app", "websocket")

local function changes(commits)
  local out = {}
  for _, cm in ipairs(commits) do
    out[#out + 1] = table.concat(H.change_strings(cm, true), ", ")
  end
  return out
end

-- Runs until an event named `name` whose message matches `pat` (plain text) arrives;
-- returns it. Events seen meanwhile are kept in `seen` when given.
local function wait_for(e, name, pat, timeout, seen)
  local got
  e:run_until(function()
    for _, ev in ipairs(e:events()) do
      if seen then seen[#seen + 1] = ev end
      if not got and ev.event == name and (ev.message or ""):find(pat, 1, true) then
        got = ev
      end
    end
    return got ~= nil
  end, timeout or "5s")
  return got
end

-- Runs until the component's value satisfies `pred`; returns whether it did.
local function until_value(e, pred, timeout)
  return e:run_until(function() return pred(e:get("app")) end, timeout or "5s")
end

-- The server's clients, once `n` are connected (the source connects after start).
local function connected(e, w, n)
  local st
  e:run_until(function()
    st = w.stats()
    return st.clients == (n or 1)
  end, "5s")
  return st
end

describe("rc.websocket", function()
  after_each(H.cleanup)

  it("checks its options at load time", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.websocket { url = "ws://x", pnig = "1s" } end)
    for bad, msg in pairs {
      ["url = 'http://x/live'"] = "ws:// or wss:// URL",
      ["url = 'ws:///live'"] = "url has no host",
      ["url = 'ws://x:99999/'"] = "port 99999 is out of range",
      ["url = 'ws://x/a b'"] = "must not contain spaces",
      ["url = 'ws://x/', ping = '1ms'"] = "ping must be at least 10ms",
      ["url = 'ws://x/', ping = true"] = "'ping' must be a duration",
      ["url = 'ws://x/', headers = { Upgrade = 'h2c' }"] = "'Upgrade' is set by the source",
      ["url = 'ws://x/', headers = { ['Sec-WebSocket-Protocol'] = 'a' }"] = "set by the source",
      ["url = 'ws://x/', headers = { A = 'x\\ny' }"] = "on one line",
      ["url = 'ws://u:p@x/', token_env = 'T'"] = "give the credentials once",
      ["url = 'ws://x/', token_env = 'T', headers = { authorization = 'x' }"] =
        "give the credentials once",
      ["url = 'ws://x/', format = 'xml'"] = "unknown format",
      ["url = 'ws://x/', timeout = 0"] = "timeout must be at least 1ms",
    } do
      local err = H.load_error(policy(bad))
      assert.matches("websocket", err)
      assert.matches(msg, err, 1, true)
    end
    -- A string is the url; a query without a path.
    assert.equal("nil", H.load_error([[
local rc = require "reactcfg"
return rc.policy { components = {
  app = { source = rc.websocket "ws://127.0.0.1:1?v=1", startup = "default" },
} }
]]))
  end)

  describe("against a python3-websockets server", function()
    local w
    before_each(function() w = H.ws_server() end)
    after_each(function() if w then w.stop() end end)

    it("delivers each message as a document, one commit per change", function()
      w.set('{"a": 1, "b": "x"}')
      local e = H.engine(policy(("url = %q"):format(w.url .. "/live")))
      assert.same({ a = 1, b = "x" }, e:get("app"))
      e:commits()
      w.set('{"a": 2, "b": "x"}')
      assert.same({ "modified app.a" }, changes(H.commits(e, 1)))
      -- The same document again is no change.
      w.set('{"a": 2, "b": "x"}')
      assert.same({}, changes(H.commits(e, 0)))
      -- A binary message is a document too.
      w.set('{"a": 3, "b": "x"}', true)
      assert.same({ "modified app.a" }, changes(H.commits(e, 1)))
      -- Messages in quick succession: the last one is where it ends.
      for i = 4, 8 do w.set(('{"a": %d, "b": "x"}'):format(i)) end
      assert.truthy(until_value(e, function(v) return v and v.a == 8 end))
      assert.equal(0, #H.events(e, "source.error"))
      -- A reload request: connected, the value is current, so the request does not wait
      -- for an answer (it waited 10 s: the rescan only reconnected an idle source).
      assert.is_true(e:reload())
      local done
      for _, ev in ipairs(e:events()) do if ev.event == "reload.completed" then done = ev end end
      assert.truthy(done, "the reload ran at once")
      assert.equal("request", done.trigger)
      -- Other formats.
      w.set("a: 1\nlist: [x, y]\n")
      local e2 = H.engine(policy(("url = %q, format = 'yaml'"):format(w.url)))
      assert.same({ a = 1, list = { "x", "y" } }, e2:get("app"))
      local e3 = H.engine(policy(("url = %q, format = 'text'"):format(w.url)))
      assert.equal("a: 1\nlist: [x, y]\n", e3:get("app"))
      -- A host name: each address is tried in turn (the server listens on 127.0.0.1
      -- only, so a ::1 that localhost may resolve to first is refused).
      local e4 = H.engine(policy(("url = 'ws://localhost:%d/', format = 'text'")
        :format(w.port)))
      assert.equal("a: 1\nlist: [x, y]\n", e4:get("app"))
    end)

    it("with cache_for, closes the connection after the answer and holds it", function()
      w.set('{"a": 1}')
      local e = H.engine(policy(("url = %q"):format(w.url), ", cache_for = '1h'"))
      assert.same({ a = 1 }, e:get("app"))
      assert.truthy(wait_for(e, "component.state", "holding the value"))
      -- Stopped: the connection is closed (with a goodbye), later documents unseen.
      assert.truthy(e:run_until(function() return w.stats().clients == 0 end))
      w.set('{"a": 2}')
      e:run("300ms")
      assert.same({ a = 1 }, e:get("app"))
      assert.equal(0, #H.events(e, "source.error"))
    end)

    it("reports a document that does not parse and keeps the connection", function()
      w.set('{"a": 1}')
      local e = H.engine(policy(("url = %q, %s"):format(w.url, QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      local before = connected(e, w).connects
      w.set("{not json")
      local bad = wait_for(e, "source.error", "invalid")
      assert.truthy(bad)
      assert.equal(w.url .. "/", bad.file)
      assert.same({ a = 1 }, e:get("app"))
      w.set('{"a": 2}')
      assert.truthy(until_value(e, function(v) return v and v.a == 2 end))
      assert.truthy(H.wait_event(e, "source.recovered"))
      assert.equal(before, w.stats().connects)   -- never reconnected
    end)

    it("keeps the value when the server closes, and reconnects to the current document",
      function()
      w.set('{"a": 1}')
      local e = H.engine(policy(("url = %q, %s"):format(w.url .. "/live", QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      w.post("close", '{"code": 1001, "reason": "going down for a deploy"}')
      local err = wait_for(e, "source.error", "closed the WebSocket (code 1001: going down")
      assert.truthy(err)
      assert.same({ a = 1 }, e:get("app"))
      -- What changed while it was away comes as the first message of the new connection.
      w.set('{"a": 2}')
      assert.truthy(until_value(e, function(v) return v and v.a == 2 end))
      assert.truthy(H.wait_event(e, "source.recovered"))
      assert.truthy(w.stats().connects >= 2)
      -- A normal closure is a failure too: nothing would follow the document anymore.
      w.post("close", '{"code": 1000}')
      assert.truthy(wait_for(e, "source.error", "code 1000"))
      assert.truthy(H.wait_event(e, "source.recovered"))
      assert.same({ a = 2 }, e:get("app"))
    end)

    it("keeps the value while the server is killed, and is right again after its restart",
      function()
      w.set('{"a": 1}')
      local e = H.engine(policy(("url = %q, %s"):format(w.url, QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      w.kill()
      assert.truthy(wait_for(e, "source.error", "closed the connection"))
      -- Reconnects are refused meanwhile, each an error; the value stays.
      assert.truthy(wait_for(e, "source.error", "onnection refused"))
      assert.same({ a = 1 }, e:get("app"))
      w.start()   -- same port, no document until one is set
      w.set('{"a": 5}')
      assert.truthy(until_value(e, function(v) return v and v.a == 5 end, "10s"))
      assert.truthy(H.wait_event(e, "source.recovered"))
    end)

    for kind, says in pairs {
      opcode = "malformed WebSocket frame; the connection was closed (1002)",
      rsv = "malformed WebSocket frame; the connection was closed (1002)",
      masked = "malformed WebSocket frame; the connection was closed (1002)",
      utf8 = "text message that is not UTF-8; the connection was closed (1007)",
    } do
      it("refuses a malformed frame (" .. kind .. "), keeps the value and recovers",
        function()
        w.set('{"a": 1}')
        local e = H.engine(policy(("url = %q, %s"):format(w.url, QUICK)))
        assert.same({ a = 1 }, e:get("app"))
        connected(e, w)
        w.post("malformed", ('{"kind": %q}'):format(kind))
        local err = wait_for(e, "source.error", says)
        assert.truthy(err)
        assert.equal("EPARSE", err.code)
        assert.same({ a = 1 }, e:get("app"))
        assert.truthy(H.wait_event(e, "source.recovered"))
        w.set('{"a": 2}')
        assert.truthy(until_value(e, function(v) return v and v.a == 2 end))
      end)
    end

    it("refuses a message larger than max_bytes before holding it, and recovers",
      function()
      w.set('{"a": 1}')
      local e = H.engine(policy(("url = %q, max_bytes = 1000, %s"):format(w.url, QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      connected(e, w)
      w.post("oversized", '{"bytes": 5000000}')
      local big = wait_for(e, "source.error", "is larger than max_bytes (1000 bytes)")
      assert.truthy(big)
      assert.equal("ELIMIT", big.code)
      assert.same({ a = 1 }, e:get("app"))
      assert.truthy(H.wait_event(e, "source.recovered"))
      -- limits.max_bytes bounds it the same way.
      local e2 = H.engine(policy(("url = %q, limits = { max_bytes = 2000 }, %s")
        :format(w.url, QUICK)))
      connected(e2, w, 2)
      w.post("oversized", '{"bytes": 3000}')
      assert.truthy(wait_for(e2, "source.error", "larger than max_bytes (2000 bytes)"))
      -- Depth: the parser's limit applies to each document.
      local e3 = H.engine(policy(("url = %q, limits = { max_depth = 3 }, %s")
        :format(w.url, QUICK)))
      w.set('{"a": {"b": {"c": {"d": 1}}}}')
      assert.truthy(wait_for(e3, "source.error", "nesting deeper than 3 levels"))
      assert.same({ a = 1 }, e3:get("app"))
    end)

    it("takes a server that answers nothing for dead (open, then upgrading), keeps the "
      .. "value, and recovers",
      function()
      w.set('{"a": 1}')
      local e = H.engine(policy(("url = %q, ping = '200ms', timeout = '300ms', %s")
        :format(w.url, QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      -- Pings are answered while all is well: no error over several ping intervals.
      e:run("700ms")
      assert.equal(0, #H.events(e, "source.error"))
      H.sh("kill -STOP " .. w.pid)
      local ok, err = pcall(function()
        assert.truthy(wait_for(e, "source.error", "did not answer a ping", "10s"))
        assert.same({ a = 1 }, e:get("app"))
        -- Reconnecting: the kernel still accepts, the upgrade gets no answer.
        assert.truthy(wait_for(e, "source.error", "within 300 ms (waiting for the upgrade)",
          "10s"))
        assert.same({ a = 1 }, e:get("app"))
      end)
      H.sh("kill -CONT " .. w.pid)
      assert(ok, err)
      w.set('{"a": 2}')
      assert.truthy(until_value(e, function(v) return v and v.a == 2 end))
      assert.truthy(H.wait_event(e, "source.recovered"))
    end)

    it("reports a refused upgrade with its status, honours Retry-After, and recovers",
      function()
      w.set('{"a": 1}')
      w.post("reject", '{"status": 503, "count": 1000, "retry_after": 2}')
      local e = H.engine(policy(("url = %q, %s"):format(w.url, QUICK),
        ", startup = 'default', default = { a = 0 }"))
      assert.truthy(wait_for(e, "source.error",
        "refused the WebSocket upgrade: HTTP 503 Service Unavailable"))
      -- Checked by count: the 20-100 ms backoff would have tried several times by now,
      -- Retry-After (2 s) allows none.
      e:run("500ms")
      assert.equal(1, w.stats().attempts)
      assert.same({ a = 0 }, e:get("app"))
      w.post("reject", '{"clear": true}')
      assert.truthy(until_value(e, function(v) return v and v.a == 1 end))
      assert.equal(2, w.stats().attempts)
    end)

    it("starts from the cache while the server is down, then follows it again", function()
      w.set('{"a": 1}')
      local cache = H.tmpdir("ws-cache")
      if cache:sub(1, 1) ~= "/" then cache = os.getenv("PWD") .. "/" .. cache end
      local text = ([[
local rc = require "reactcfg"
return rc.policy { cache = %q, components = {
  app = { source = rc.websocket { url = %q, %s }, startup = "cached" },
} }
]]):format(cache, w.url, QUICK)
      local e = H.engine(text)
      assert.truthy(until_value(e, function(v) return v and v.a == 1 end))
      e:run("100ms")
      w.kill()
      local e2 = H.engine(text)
      assert.same({ a = 1 }, e2:get("app"))                  -- from the cache, stale
      assert.truthy(wait_for(e2, "source.error", "cannot connect"))
      w.start()
      w.set('{"a": 2}')
      assert.truthy(until_value(e2, function(v) return v and v.a == 2 end, "10s"))
      H.rmdir(cache)
    end)

    it("opens its circuit after failures in a row, and closes it when the server answers",
      function()
      w.set('{"a": 1}')
      local e = H.engine(policy(("url = %q, backoff = { min = '20ms', max = '50ms' }, "
        .. "circuit = { failures = 2, cooldown = '300ms' }"):format(w.url)))
      w.kill()
      assert.truthy(wait_for(e, "component.state", "circuit open"))
      w.start()
      w.set('{"a": 2}')
      assert.truthy(wait_for(e, "component.state", "circuit closed", "10s"))
      assert.truthy(until_value(e, function(v) return v and v.a == 2 end))
    end)
  end)

  describe("credentials", function()
    local function no_secret(events, e)
      for _, ev in ipairs(events) do
        for _, f in ipairs { "message", "file" } do
          assert.not_matches("s3cret", ev[f] or "")
          assert.not_matches("p4ss", ev[f] or "")
        end
      end
      for _, c in ipairs(e:components()) do
        assert.not_matches("s3cret", c.source)
        assert.not_matches("p4ss", c.source)
      end
    end

    it("sends token_env as a bearer token, with the policy's headers", function()
      local w = H.ws_server("--token s3cret-tok")
      local ok, err = pcall(function()
        w.set('{"a": 1}')
        local e = H.engine(policy(("url = %q, token_env = 'RC_SPEC_WS_TOKEN', "
          .. "headers = { ['X-Tenant'] = 'blue' }, %s"):format(w.url .. "/live?key=s3cret-q",
          QUICK)))
        local seen = {}
        assert.truthy(wait_for(e, "source.error", "RC_SPEC_WS_TOKEN", nil, seen))
        e:setenv("RC_SPEC_WS_TOKEN", "wrong")
        assert.truthy(wait_for(e, "source.error", "HTTP 401 Unauthorized", nil, seen))
        e:setenv("RC_SPEC_WS_TOKEN", "s3cret-tok")
        assert.truthy(until_value(e, function(v) return v and v.a == 1 end))
        assert.matches('"X-Tenant": "blue"', w.stats().raw, 1, true)
        -- The URL is shown without its query (which may carry a key).
        assert.equal(("websocket(%s/live)"):format(w.url), e:components()[1].source)
        for _, ev in ipairs(e:events()) do seen[#seen + 1] = ev end
        no_secret(seen, e)
        e:setenv("RC_SPEC_WS_TOKEN", nil)
      end)
      w.stop()
      assert(ok, err)
    end)

    it("sends a user and password from the URL as Basic, never showing them", function()
      local w = H.ws_server("--basic alice:p4ss")
      local ok, err = pcall(function()
        w.set('{"a": 1}')
        local url = ("ws://alice:p4ss@127.0.0.1:%d/live"):format(w.port)
        local e = H.engine(policy(("url = %q, %s"):format(url, QUICK)))
        assert.same({ a = 1 }, e:get("app"))
        assert.equal(("websocket(%s/live)"):format(w.url), e:components()[1].source)
        local seen = {}
        w.kill()
        assert.truthy(wait_for(e, "source.error", "onnection refused", nil, seen))
        no_secret(seen, e)
        for _, ev in ipairs(seen) do assert.not_matches("alice", ev.message or "") end
        -- Without them, the server refuses.
        w.start()
        w.set('{"a": 2}')
        local e2 = H.engine(policy(("url = %q, %s"):format(w.url, QUICK),
          ", startup = 'default'"))
        assert.truthy(wait_for(e2, "source.error", "HTTP 401 Unauthorized"))
      end)
      w.stop()
      assert(ok, err)
    end)
  end)

  describe("over TLS (wss://, a self-signed certificate)", function()
    local w, dir
    setup(function()
      dir = H.tmpdir("ws-tls")
      -- ca_file is relative to the policy: name the certificate absolutely.
      if dir:sub(1, 1) ~= "/" then dir = os.getenv("PWD") .. "/" .. dir end
      local _, code = H.sh(("env -u LD_PRELOAD openssl req -x509 -newkey rsa:2048 -nodes "
        .. "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
        .. "-keyout '%s/key.pem' -out '%s/cert.pem'"):format(dir, dir))
      assert(code == 0, "openssl could not make a test certificate")
      w = H.ws_server(("--cert '%s/cert.pem' --key '%s/key.pem'"):format(dir, dir))
      w.set('{"tls": true}')
    end)
    teardown(function()
      if w then w.stop() end
      H.rmdir(dir)
    end)

    local function wss(extra)
      return policy(("url = %q, %s, %s"):format((w.url:gsub("^ws:", "wss:")), extra, QUICK),
        ", startup = 'default', default = { tls = false }")
    end

    it("refuses the server without its CA, names why, and keeps the default", function()
      local e = H.engine(wss("ping = '20s'"))
      local err = wait_for(e, "source.error", "certificate is not trusted")
      assert.truthy(err)
      assert.matches("self%-signed", err.message)
      assert.same({ tls = false }, e:get("app"))
    end)

    it("accepts it with ca_file", function()
      local e = H.engine(wss(("ca_file = '%s/cert.pem'"):format(dir)))
      assert.truthy(until_value(e, function(v) return v and v.tls == true end))
      assert.equal(0, #H.events(e, "source.error"))
      -- A change over TLS.
      w.set('{"tls": "still"}')
      assert.truthy(until_value(e, function(v) return v and v.tls == "still" end))
      w.set('{"tls": true}')
    end)

    it("checks the name: the certificate is for 127.0.0.1, not localhost", function()
      local text = policy(("url = %q, ca_file = '%s/cert.pem', %s")
        :format(("wss://localhost:%d/"):format(w.port), dir, QUICK),
        ", startup = 'default', default = { tls = false }")
      local e = H.engine(text)
      assert.truthy(wait_for(e, "source.error", "certificate is not trusted"))
      assert.same({ tls = false }, e:get("app"))
    end)

    it("accepts it with insecure = true", function()
      local e = H.engine(wss("insecure = true"))
      assert.truthy(until_value(e, function(v) return v and v.tls ~= false end))
    end)

    it("reports a missing CA file", function()
      local e = H.engine(wss(("ca_file = '%s/nope.pem'"):format(dir)))
      assert.truthy(wait_for(e, "source.error", "cannot read the CA certificates"))
    end)
  end)
end)
