-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.redis against a real redis-server (Debian's, started here on a free port): a key,
-- a hash and a prefix followed by keyspace notifications, expiry and ctx.ttl, FLUSHALL,
-- the server killed mid-watch and restarted empty, a server that hangs, a start from the
-- cache, limits, AUTH and SELECT, and a server whose CONFIG command is disabled (polling
-- instead of notifications).
local H = require "spec.lua.helpers"

local server = H.redis_server

local policy = H.source_policy("app", "redis")

-- Every commit's changes as "kind path" strings, one string per commit.
local function changes(commits)
  local out = {}
  for _, cm in ipairs(commits) do out[#out + 1] = table.concat(H.change_strings(cm, true),
    ", ") end
  return out
end

local wait_for = H.wait_for

local QUICK = "backoff = { min = '20ms', max = '100ms' }, circuit = false"

describe("rc.redis", function()
  after_each(H.cleanup)

  it("checks its options at load time", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.redis { key = "a", adress = "x" } end)
    for bad, msg in pairs {
      ["key = 'a', hash = 'b'"] = "exactly one of 'key', 'hash' or 'prefix'",
      ["addr = 'http://x', key = 'a'"] = "redis:// URL",
      ["addr = 'rediss://x', key = 'a'"] = "no TLS",
      ["addr = 'redis://x/zero', key = 'a'"] = "database must be a number",
      ["key = 'a', interval = '1ms'"] = "interval must be at least 10ms",
      ["addr = 'redis://:pw@x', key = 'a', password_env = 'P'"] = "not both",
      ["key = 'a', format = 'xml'"] = "unknown format",
    } do
      local err = H.load_error(policy(bad))
      assert.matches("redis", err)
      assert.matches(msg, err, 1, true)
    end
  end)

  describe("against redis-server", function()
    local r
    setup(function() r = server() end)
    teardown(function() if r then r.stop() end end)
    before_each(function() r.cmd("FLUSHALL") end)

    it("reads a key and follows changes and deletion, one commit each", function()
      r.cmd("SET", "app:config", '{"a": 1, "b": "x"}')
      r.cmd("SET", "app:config2", '{"other": true}')
      local e = H.engine(policy(("addr = %q, key = 'app:config'"):format(r.addr)))
      assert.same({ a = 1, b = "x" }, e:get("app"))
      -- Notifications were turned on for the source: K g $ h x e, at least.
      local flags = r.cmd("CONFIG", "GET", "notify-keyspace-events")
      for f in ("Kg$hxe"):gmatch(".") do assert.truthy(flags:find(f, 1, true), flags) end
      e:commits()
      r.cmd("SET", "app:config", '{"a": 2, "b": "x"}')
      assert.same({ "modified app.a" }, changes(H.commits(e, 1)))
      -- A key that merely shares the name's beginning is another key.
      r.cmd("SET", "app:config2", '{"other": false}')
      assert.same({}, changes(H.commits(e, 0)))
      r.cmd("DEL", "app:config")
      assert.same({ "removed app" }, changes(H.commits(e, 1)))
      assert.is_nil(e:get("app"))
      r.cmd("SET", "app:config", '{"a": 3}')
      assert.same({ "added app" }, changes(H.commits(e, 1)))
      assert.same({ a = 3 }, e:get("app"))
      assert.equal(0, #H.events(e, "source.error"))
      -- Each read (MULTI ... EXEC) is in the fetch-duration histogram of its kind.
      assert.truthy(H.fetch_count(e, "redis") >= 4)
    end)

    it("follows a hash field by field", function()
      r.cmd("HSET", "app:flags", "beta", "on", "limit", "10")
      local e = H.engine(policy(("addr = %q, hash = 'app:flags'"):format(r.addr)))
      assert.same({ beta = "on", limit = "10" }, e:get("app"))   -- fields are text
      e:commits()
      r.cmd("HSET", "app:flags", "limit", "20")
      assert.same({ "modified app.limit" }, changes(H.commits(e, 1)))
      r.cmd("HSET", "app:flags", "new", "x")
      assert.same({ "added app.new" }, changes(H.commits(e, 1)))
      r.cmd("HDEL", "app:flags", "beta")
      assert.same({ "removed app.beta" }, changes(H.commits(e, 1)))
      assert.same({ limit = "20", new = "x" }, e:get("app"))
      -- format = "json" parses each field.
      r.cmd("HSET", "app:typed", "n", "5", "on", "true")
      local e2 = H.engine(policy(("addr = %q, hash = 'app:typed', format = 'json'")
        :format(r.addr)))
      assert.same({ n = 5, on = true }, e2:get("app"))
    end)

    it("reads a prefix as a table and follows added, changed and removed keys", function()
      r.cmd("MSET", "app:cfg:db", '{"host": "h"}', "app:cfg:n", "5", "app:other", "0")
      r.cmd("HSET", "app:cfg:flags", "beta", "true")
      local e = H.engine(policy(("addr = %q, prefix = 'app:cfg:'"):format(r.addr)))
      assert.same({ db = { host = "h" }, n = 5, flags = { beta = true } }, e:get("app"))
      e:commits()
      r.cmd("SET", "app:cfg:new", '"x"')
      assert.same({ "added app.new" }, changes(H.commits(e, 1)))
      r.cmd("SET", "app:cfg:n", "6")
      assert.same({ "modified app.n" }, changes(H.commits(e, 1)))
      r.cmd("HSET", "app:cfg:flags", "beta", "false")
      assert.same({ "modified app.flags.beta" }, changes(H.commits(e, 1)))
      r.cmd("DEL", "app:cfg:db")
      assert.same({ "removed app.db" }, changes(H.commits(e, 1)))
      r.cmd("SET", "app:other", "1")
      assert.same({}, changes(H.commits(e, 0)))
      -- The last key gone: the prefix is absent, as a missing key is.
      r.cmd("DEL", "app:cfg:n", "app:cfg:new", "app:cfg:flags")
      e:run_until(function() return e:get("app") == nil end)
      assert.is_nil(e:get("app"))
      -- Many keys (several SCAN steps' worth of the database).
      local args = { "MSET" }
      for i = 1, 300 do
        args[#args + 1] = "app:cfg:k" .. i
        args[#args + 1] = tostring(i)
        args[#args + 1] = "noise:" .. i
        args[#args + 1] = "0"
      end
      r.cmd(table.unpack(args))
      assert.truthy(e:run_until(function() return e:get("app.k300") == 300 end))
      local e2 = H.engine(policy(("addr = %q, prefix = 'app:cfg:'"):format(r.addr)))
      local n = 0
      for _ in pairs(e2:get("app")) do n = n + 1 end
      assert.equal(300, n)
      assert.equal(0, #H.events(e, "source.error"))
    end)

    it("escapes glob characters of a prefix", function()
      r.cmd("MSET", "g*[x]:a", "1", "gz[x]:b", "2", "g*[x]", "3")
      local e = H.engine(policy(("addr = %q, prefix = 'g*[x]:'"):format(r.addr)))
      assert.same({ a = 1 }, e:get("app"))
      r.cmd("SET", "gy[x]:c", "4")
      r.cmd("SET", "g*[x]:d", "5")
      assert.truthy(e:run_until(function() return e:get("app.d") == 5 end))
      assert.same({ a = 1, d = 5 }, e:get("app"))
    end)

    it("removes a key that expires and shows its TTL as ctx.ttl", function()
      r.cmd("SET", "app:ttl", '{"v": 1}', "EX", "100")
      local e = H.engine(policy(("addr = %q, key = 'app:ttl'"):format(r.addr), [[,
    update = function(new, ctx)
      if new then new.ttl = ctx.ttl end
      return new
    end]]))
      local ttl = e:get("app.ttl")
      assert.truthy(ttl > 90 and ttl <= 100, tostring(ttl))
      -- A key without an expiry has no ctx.ttl.
      r.cmd("SET", "app:ttl", '{"v": 2}')
      assert.truthy(e:run_until(function() return e:get("app.v") == 2 end))
      assert.is_nil(e:get("app.ttl"))
      -- Redis deletes the key some time after its TTL (the `expired` event): wait for it.
      r.cmd("SET", "app:ttl", '{"v": 3}', "PX", "300")
      assert.truthy(e:run_until(function() return e:get("app.v") == 3 end))
      assert.truthy(e:get("app.ttl") <= 0.3)
      assert.truthy(e:run_until(function() return e:get("app") == nil end))
      assert.equal(0, #H.events(e, "source.error"))
    end)

    it("reads again after FLUSHALL and FLUSHDB (no keyspace notification for them)",
      function()
      r.cmd("SET", "app:config", "1")
      r.cmd("SET", "app:cfg:a", "2")
      local e = H.engine(policy(("addr = %q, key = 'app:config'"):format(r.addr)))
      local e2 = H.engine(policy(("addr = %q, prefix = 'app:cfg:'"):format(r.addr)))
      assert.equal(1, e:get("app"))
      assert.same({ a = 2 }, e2:get("app"))
      r.cmd("FLUSHALL")
      assert.truthy(e:run_until(function() return e:get("app") == nil end))
      assert.truthy(e2:run_until(function() return e2:get("app") == nil end))
      r.cmd("SET", "app:config", "4")
      assert.truthy(e:run_until(function() return e:get("app") == 4 end))
      r.cmd("FLUSHDB")
      assert.truthy(e:run_until(function() return e:get("app") == nil end))
      for _, x in ipairs { e, e2 } do
        assert.equal(0, #H.events(x, "source.error"))
        assert.equal(0, #H.events(x, "component.state"))
      end
    end)

    it("refuses a value larger than max_bytes and keeps the last good one", function()
      r.cmd("SET", "app:big", '"' .. ("x"):rep(50) .. '"')
      local e = H.engine(policy(("addr = %q, key = 'app:big', max_bytes = 100, %s")
        :format(r.addr, QUICK)))
      assert.equal(50, #e:get("app"))
      r.cmd("SET", "app:big", '"' .. ("y"):rep(200) .. '"')
      assert.truthy(wait_for(e, "source.error", "larger than max_bytes"))
      assert.equal(("x"):rep(50), e:get("app"))
      r.cmd("SET", "app:big", '"ok"')
      assert.truthy(e:run_until(function() return e:get("app") == "ok" end))
      assert.truthy(H.wait_event(e, "source.recovered"))
      -- A hash: the reply itself is refused while it arrives, before it is built.
      local fields = { "HSET", "app:bighash" }
      for i = 1, 50 do
        fields[#fields + 1] = "f" .. i
        fields[#fields + 1] = ("z"):rep(100)
      end
      r.cmd(table.unpack(fields))
      local e2 = H.engine(policy(("addr = %q, hash = 'app:bighash', max_bytes = 1000, %s")
        :format(r.addr, QUICK), ", startup = 'cached'"))
      assert.truthy(wait_for(e2, "source.error", "larger than max_bytes"))
      assert.is_nil(e2:get("app"))
    end)

    it("reports a key of another type and malformed values, keeping the last value",
      function()
      r.cmd("SET", "app:typed", '{"a": 1}')
      local e = H.engine(policy(("addr = %q, key = 'app:typed', %s"):format(r.addr,
        QUICK)))
      r.cmd("SET", "app:typed", "{not json")
      local bad = wait_for(e, "source.error", "invalid literal")
      assert.truthy(bad)
      assert.matches("/0 app:typed", bad.file, 1, true)
      r.cmd("DEL", "app:typed")
      r.cmd("RPUSH", "app:typed", "x")
      assert.truthy(wait_for(e, "source.error", "is a list"))
      assert.same({ a = 1 }, e:get("app"))
      r.cmd("DEL", "app:typed")
      r.cmd("SET", "app:typed", '{"a": 2}')
      assert.truthy(e:run_until(function() return e:get("app.a") == 2 end))
    end)
  end)

  describe("when the server dies", function()
    local r
    before_each(function() r = server() end)
    after_each(function() if r then r.stop() end end)

    it("keeps the last value, reconnects, and is right again after a restart", function()
      r.cmd("SET", "app:config", '{"a": 1}')
      r.cmd("SET", "app:cfg:x", "1")
      local e = H.engine(policy(("addr = %q, key = 'app:config', %s"):format(r.addr,
        QUICK)))
      local e2 = H.engine(policy(("addr = %q, prefix = 'app:cfg:', %s"):format(r.addr,
        QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      r.kill()
      assert.truthy(wait_for(e, "source.error", "lost"))
      assert.truthy(wait_for(e2, "source.error", "."))
      e:run("300ms")  -- reconnects are refused meanwhile
      assert.truthy(#H.events(e, "source.error") >= 1)
      assert.same({ a = 1 }, e:get("app"))
      assert.same({ x = 1 }, e2:get("app"))
      -- Back, empty (no persistence) and with notifications off again.
      r.start()
      assert.truthy(e:run_until(function() return e:get("app") == nil end))
      assert.truthy(e2:run_until(function() return e2:get("app") == nil end))
      assert.truthy(H.wait_event(e, "source.recovered"))
      r.cmd("SET", "app:config", '{"a": 2}')
      r.cmd("SET", "app:cfg:y", "2")
      assert.truthy(e:run_until(function() return e:get("app.a") == 2 end))
      assert.truthy(e2:run_until(function() return e2:get("app.y") == 2 end))
      -- Notifications again, not polling.
      assert.equal(0, #H.events(e, "component.state"))
      assert.truthy(r.cmd("CONFIG", "GET", "notify-keyspace-events"):find("K", 1, true))
    end)

    it("starts from the cache while the server is down, then follows it again", function()
      r.cmd("SET", "app:config", '{"a": 1}')
      local cache = H.tmpdir("redis-cache")
      -- Both policies name the same directory (a relative one is the policy's).
      if cache:sub(1, 1) ~= "/" then cache = os.getenv("PWD") .. "/" .. cache end
      local text = ([[
local rc = require "reactcfg"
return rc.policy { cache = %q, components = {
  app = { source = rc.redis { addr = %q, key = 'app:config', %s }, startup = "cached" },
} }
]]):format(cache, r.addr, QUICK)
      local e = H.engine(text)
      -- No cache yet: "cached" starts without waiting.
      assert.truthy(e:run_until(function() return e:get("app.a") == 1 end))
      e:run("100ms")
      r.kill()
      local e2 = H.engine(text)
      assert.same({ a = 1 }, e2:get("app"))                 -- from the cache, stale
      assert.truthy(wait_for(e2, "source.error", "cannot connect"))
      r.start()
      r.cmd("SET", "app:config", '{"a": 2}')
      assert.truthy(e2:run_until(function() return e2:get("app.a") == 2 end))
      assert.truthy(wait_for(e2, "component.state", "cached value is replaced"))
      H.rmdir(cache)
    end)

    it("times out on a server that hangs, keeps the value, and recovers", function()
      r.cmd("SET", "app:config", '{"a": 1}')
      -- ttl makes the source read every 2 s even with nothing changing: the read that
      -- finds the server hung.
      local e = H.engine(policy(("addr = %q, key = 'app:config', ttl = '4s', "
        .. "timeout = '200ms', %s"):format(r.addr, QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      H.sh("kill -STOP " .. r.pid)
      local ok, err = pcall(function()
        assert.truthy(wait_for(e, "source.error", "no answer from Redis", "10s"))
        assert.same({ a = 1 }, e:get("app"))
      end)
      H.sh("kill -CONT " .. r.pid)
      assert(ok, err)
      r.cmd("SET", "app:config", '{"a": 2}')
      assert.truthy(e:run_until(function() return e:get("app.a") == 2 end))
      assert.truthy(H.wait_event(e, "source.recovered"))
    end)

    it("with ttl, treats the value as absent after that long without a fresh read",
      function()
      r.cmd("SET", "app:config", '{"a": 1}')
      local e = H.engine(policy(("addr = %q, key = 'app:config', ttl = '600ms', %s")
        :format(r.addr, QUICK)))
      assert.same({ a = 1 }, e:get("app"))
      -- While the server answers, the value stays (it is read again every ttl/2).
      e:run("900ms")
      assert.same({ a = 1 }, e:get("app"))
      assert.equal(0, #H.events(e, "component.state"))
      r.kill()
      assert.truthy(wait_for(e, "component.state", "treated as absent"))
      assert.is_nil(e:get("app"))
      -- A withdrawn value is no recovery: the source is still failing.
      assert.equal(0, #H.events(e, "source.recovered"))
      r.start()
      r.cmd("SET", "app:config", '{"a": 2}')
      assert.truthy(e:run_until(function() return e:get("app.a") == 2 end))
      assert.truthy(H.wait_event(e, "source.recovered"))
    end)
  end)

  describe("on a server with CONFIG disabled", function()
    local r
    setup(function() r = server("--rename-command CONFIG ''") end)
    teardown(function() if r then r.stop() end end)

    it("says so once and polls every interval", function()
      r.cmd("SET", "app:config", "1")
      local e = H.engine(policy(("addr = %q, key = 'app:config', interval = '50ms'")
        :format(r.addr)))
      assert.equal(1, e:get("app"))
      local said = wait_for(e, "component.state", "polling every 50ms")
      assert.truthy(said)
      assert.matches("CONFIG", said.message)
      for i = 2, 4 do
        r.cmd("SET", "app:config", tostring(i))
        assert.truthy(e:run_until(function() return e:get("app") == i end))
      end
      r.cmd("DEL", "app:config")
      assert.truthy(e:run_until(function() return e:get("app") == nil end))
      assert.equal(0, #H.events(e, "component.state"))   -- said once
      assert.equal(0, #H.events(e, "source.error"))
    end)
  end)

  describe("with a password", function()
    local r
    setup(function()
      r = server("--requirepass s3cret-pw", "-a s3cret-pw --no-auth-warning")
      r.cmd("ACL", "SETUSER", "alice", "on", ">al1ce-pw", "~*", "&*", "+@all")
    end)
    teardown(function() if r then r.stop() end end)

    local function no_secret(e)
      for _, ev in ipairs(e:events()) do
        for _, f in ipairs { "message", "file" } do
          assert.not_matches("s3cret", ev[f] or "")
          assert.not_matches("al1ce", ev[f] or "")
        end
      end
    end

    it("authenticates from password_env, and retries when the variable changes",
      function()
      r.cmd("SET", "app:config", "1")
      local e = H.engine(policy(("addr = %q, key = 'app:config', "
        .. "password_env = 'RC_SPEC_REDIS_PW', %s"):format(r.addr, QUICK)))
      assert.truthy(wait_for(e, "source.error", "RC_SPEC_REDIS_PW"))
      e:setenv("RC_SPEC_REDIS_PW", "wrong")
      assert.truthy(wait_for(e, "source.error", "refused the credentials"))
      e:setenv("RC_SPEC_REDIS_PW", "s3cret-pw")
      assert.truthy(e:run_until(function() return e:get("app") == 1 end))
      r.cmd("SET", "app:config", "2")
      assert.truthy(e:run_until(function() return e:get("app") == 2 end))
      e:setenv("RC_SPEC_REDIS_PW", nil)
      no_secret(e)
    end)

    it("takes a user and password from the URL, never shows them, and SELECTs", function()
      r.cmd("-n", "3", "SET", "app:config", '"in db 3"')
      local addr = ("redis://alice:al1ce-pw@127.0.0.1:%d/3"):format(r.port)
      local e = H.engine(policy(("addr = %q, key = 'app:config', %s"):format(addr, QUICK)))
      assert.equal("in db 3", e:get("app"))
      r.cmd("-n", "3", "SET", "app:config", '"changed"')
      r.cmd("-n", "0", "SET", "app:config", '"db 0"')
      assert.truthy(e:run_until(function() return e:get("app") == "changed" end))
      e:run("200ms")
      assert.equal("changed", e:get("app"))
      -- Errors name the server without the credentials.
      r.cmd("ACL", "SETUSER", "alice", "off")
      r.cmd("CLIENT", "KILL", "USER", "alice")
      local err = wait_for(e, "source.error", "refused the credentials")
      assert.truthy(err)
      assert.matches("redis://127.0.0.1:" .. r.port .. "/3", err.message, 1, true)
      no_secret(e)
      r.cmd("ACL", "SETUSER", "alice", "on")
      assert.truthy(H.wait_event(e, "source.recovered"))
    end)
  end)
end)
