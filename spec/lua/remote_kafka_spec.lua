-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.kafka against librdkafka's mock cluster (Debian has no Kafka broker; the mock is a
-- Kafka protocol implementation inside librdkafka, run by spec/lua/kafka.lua in a
-- process of its own): a topic read from the beginning as a configuration log (latest
-- record per key, tombstones), the first value only at the high watermarks of start,
-- records followed as they come, bad and oversized records, brokers going down and
-- coming back, a start from the cache while the cluster is down. (A missing topic cannot
-- be shown: the mock cluster creates a topic when a client asks for its metadata.)
local H = require "spec.lua.helpers"
local K = require "spec.lua.kafka"

local QUICK = "backoff = { min = '20ms', max = '100ms' }, circuit = false, "
  .. "timeout = '500ms'"

local policy = H.source_policy("app", "kafka")

local wait_for = H.wait_for

local n = 0
-- A fresh topic name (one cluster serves the whole file).
local function topic()
  n = n + 1
  return "cfg-" .. n
end

describe("rc.kafka", function()
  after_each(H.cleanup)

  it("checks its options at load time", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.kafka { brokers = "x:1", topic = "t", tpoic = 1 } end)
    for bad, msg in pairs {
      ["topic = 't'"] = "'brokers' must be",
      ["brokers = 'a:1'"] = "'topic' is required",
      ["brokers = 'a:1', topic = 'a b'"] = "'topic' must be 1 to 249 characters",
      ["brokers = 'user:pw@a:1', topic = 't'"] = "host:port pairs",
      ["brokers = 'a:1', topic = 't', key = 3"] = "'key' must be a string",
      ["brokers = 'a:1', topic = 't', format = 'xml'"] = "unknown format",
      ["brokers = 'a:1', topic = 't', config = { ['group.id'] = 'g' }"] =
        "'group.id' is set by the source",
      ["brokers = 'a:1', topic = 't', config = { ['sasl.password'] = 'pw' }"] =
        "holds a secret",
      ["brokers = 'a:1', topic = 't', token_env = 'T'"] = "unknown option 'token_env'",
    } do
      local err = H.load_error(policy(bad))
      assert.matches(msg, err, 1, true)
    end
    -- A property librdkafka does not know is refused when the source is created.
    assert.matches("librdkafka refused the configuration", H.load_error(policy(
      "brokers = 'a:1', topic = 't', config = { ['no.such.property'] = '1' }")), 1, true)
  end)

  describe("against the mock cluster", function()
    local k
    setup(function() k = K.cluster() end)
    teardown(function() if k then k.stop() end end)

    local function src(t, more)
      return ("brokers = %q, topic = %q%s"):format(k.bootstraps, t, more and (", " .. more)
        or "")
    end

    it("reads the log from the beginning: the latest record per key, tombstones remove",
      function()
      local t = topic()
      k.topic(t, 3)
      k.produce(t, 0, "billing", '{"rate": 1}')
      k.produce(t, 1, "search", '{"on": true}')
      k.produce(t, 0, "billing", '{"rate": 2}')
      k.produce(t, 2, "old", '"x"')
      k.produce(t, 2, "old", nil)                     -- a tombstone
      k.produce(t, 2, "bad-then-fixed", '{not json')  -- replaced: no error
      k.produce(t, 2, "bad-then-fixed", '"fixed"')
      local e = H.engine(policy(src(t)))
      assert.same({ billing = { rate = 2 }, search = { on = true },
                    ["bad-then-fixed"] = "fixed" }, e:get("app"))
      local one = H.engine(policy(src(t, "key = 'billing'")))
      assert.same({ rate = 2 }, one:get("app"))
      local gone = H.engine(policy(src(t, "key = 'old'")))
      assert.is_nil(gone:get("app"))
      for _, x in ipairs { e, one, gone } do
        assert.equal(0, #H.events(x, "source.error"))
        assert.equal(1, #x:commits())
      end
    end)

    it("delivers the first value only when every partition reached its end at start",
      function()
      local t = topic()
      k.topic(t, 4)
      -- Many records per partition: librdkafka fetches them in several batches.
      for i = 1, 200 do k.produce(t, i % 4, "k" .. (i % 8), tostring(i)) end
      local e = H.engine(policy(src(t)))
      local want = {}
      for i = 193, 200 do want["k" .. (i % 8)] = i end
      assert.same(want, e:get("app"))
      -- No value made of part of the log was ever committed: revision 1 has it all.
      local commits = e:commits()
      assert.equal(1, #commits)
      assert.same({ "added app" }, H.change_strings(commits[1]))
      e:run("200ms")
      assert.equal(0, #e:commits())
      -- An empty topic is complete at once: absent.
      local t2 = topic()
      k.topic(t2, 2)
      local e2 = H.engine(policy(src(t2)))
      assert.is_nil(e2:get("app"))
      assert.equal(0, #H.events(e2, "source.error"))
    end)

    it("follows new records, one commit each, and a tombstone of its key", function()
      local t = topic()
      k.topic(t, 2)
      k.produce(t, 0, "billing", '{"rate": 1}')
      local e = H.engine(policy(src(t, "key = 'billing'")))
      local all = H.engine(policy(src(t)))
      assert.same({ rate = 1 }, e:get("app"))
      e:commits()
      all:commits()
      k.produce(t, 0, "billing", '{"rate": 5}')
      assert.same({ "modified app.rate" }, H.change_strings(H.commits(e, 1)[1]))
      assert.same({ "modified app.billing.rate" }, H.change_strings(H.commits(all, 1)[1]))
      k.produce(t, 1, "search", '{"on": true}')         -- another key
      assert.same({ "added app.search" }, H.change_strings(H.commits(all, 1)[1]))
      assert.equal(0, #e:commits())
      k.produce(t, 0, "billing", nil)
      assert.same({ "removed app" }, H.change_strings(H.commits(e, 1)[1]))
      assert.same({ "removed app.billing" }, H.change_strings(H.commits(all, 1)[1]))
      assert.is_nil(e:get("app"))
      k.produce(t, 0, "billing", '{"rate": 6}')
      assert.same({ "added app" }, H.change_strings(H.commits(e, 1)[1]))
      -- Records without a key have no place in the table: skipped.
      k.produce(t, 1, nil, '"no key"')
      k.produce(t, 1, "search", '{"on": false}')
      assert.truthy(all:run_until(function() return all:get("app.search.on") == false end))
      assert.same({ billing = { rate = 6 }, search = { on = false } }, all:get("app"))
      for _, x in ipairs { e, all } do assert.equal(0, #H.events(x, "source.error")) end
    end)

    it("keeps the last good value of a key whose record is bad or too large", function()
      local t = topic()
      k.topic(t, 1)
      k.produce(t, 0, "a", '{"v": 1}')
      k.produce(t, 0, "b", '"small"')
      local e = H.engine(policy(src(t, "max_bytes = 100, limits = { max_depth = 3 }")))
      assert.same({ a = { v = 1 }, b = "small" }, e:get("app"))
      k.produce(t, 0, "a", '{"v": ')
      local ev = wait_for(e, "source.error", ".")
      assert.truthy(ev)
      assert.matches("(key 'a')", ev.file, 1, true)
      assert.same({ a = { v = 1 }, b = "small" }, e:get("app"))
      -- Another key's change still applies.
      k.produce(t, 0, "b", '"changed"')
      assert.truthy(e:run_until(function() return e:get("app.b") == "changed" end))
      assert.same({ v = 1 }, e:get("app.a"))
      k.produce(t, 0, "b", '"' .. ("y"):rep(200) .. '"')
      ev = wait_for(e, "source.error", "larger than max_bytes")
      assert.truthy(ev)
      assert.matches("key 'b'", ev.message, 1, true)
      assert.equal("changed", e:get("app.b"))
      k.produce(t, 0, "c", "[[[[1]]]]")                 -- deeper than limits.max_depth
      ev = wait_for(e, "source.error", "nesting deeper than 3 levels")
      assert.truthy(ev)
      assert.matches("(key 'c')", ev.file, 1, true)
      assert.is_nil(e:get("app.c"))
      k.produce(t, 0, "a", '{"v": 2}')
      assert.truthy(e:run_until(function() return e:get("app.a.v") == 2 end))
      assert.truthy(H.wait_event(e, "source.recovered"))
      assert.equal("changed", e:get("app.b"))
    end)

    it("with cache_for, reads the log once and holds it with the client closed", function()
      local t = topic()
      k.topic(t, 2)
      k.produce(t, 0, "a", "1")
      local e = H.engine(policy(src(t), ", cache_for = '1h'"))
      assert.same({ a = 1 }, e:get("app"))
      assert.truthy(wait_for(e, "component.state", "holding the value"))
      k.produce(t, 1, "b", "2")
      e:run("300ms")                                 -- not followed while it holds
      assert.same({ a = 1 }, e:get("app"))
    end)

    it("reads the SASL password from password_env and never shows it", function()
      -- librdkafka 2.0's mock cluster speaks no SASL: the broker refuses the handshake,
      -- which is enough to see the password read, retried and kept out of events.
      local t = topic()
      k.topic(t, 1)
      local e = H.engine(policy(src(t, "password_env = 'RC_SPEC_KAFKA_PW', config = { "
        .. "['security.protocol'] = 'sasl_plaintext', ['sasl.mechanisms'] = 'PLAIN', "
        .. "['sasl.username'] = 'app' }, " .. QUICK), ", startup = 'default'"))
      local seen = {}
      local function collect(pat)
        local got
        e:run_until(function()
          for _, ev in ipairs(e:events()) do
            seen[#seen + 1] = ev
            if ev.event == "source.error" and (ev.message or ""):match(pat) then
              got = ev
            end
          end
          return got ~= nil
        end)
        return got
      end
      assert.truthy(collect("RC_SPEC_KAFKA_PW is not set"))
      e:setenv("RC_SPEC_KAFKA_PW", "s3cret-kafka-pw")   -- tried again at once
      assert.truthy(collect("Kafka: "))
      e:run("200ms")
      collect(".")
      e:setenv("RC_SPEC_KAFKA_PW", nil)
      for _, ev in ipairs(seen) do
        for _, f in ipairs { "message", "file" } do
          assert.not_matches("s3cret", ev[f] or "")
        end
      end
      assert.matches("holds a secret.*password_env", H.load_error(policy(src(t,
        "config = { ['sasl.password'] = 'x' }"))))
    end)
  end)

  describe("when the brokers go down", function()
    local k
    before_each(function() k = K.cluster() end)
    after_each(function() if k then k.stop() end end)

    it("keeps the last value, reports the outage, and recovers when they come back",
      function()
      local t = topic()
      k.topic(t, 2)
      k.produce(t, 0, "a", '{"v": 1}')
      local e = H.engine(policy(("brokers = %q, topic = %q, %s"):format(k.bootstraps, t,
        QUICK)))
      local one = H.engine(policy(("brokers = %q, topic = %q, key = 'a', %s")
        :format(k.bootstraps, t, QUICK)))
      assert.same({ a = { v = 1 } }, e:get("app"))
      k.down(-1)
      assert.truthy(wait_for(e, "source.error", "Kafka: "))
      assert.truthy(wait_for(one, "source.error", "Kafka: "))
      e:run("300ms")                                  -- probes fail meanwhile
      assert.same({ a = { v = 1 } }, e:get("app"))
      assert.same({ v = 1 }, one:get("app"))
      k.up(-1)
      -- Back: a probe answers (recovery with the same value), and new records flow.
      assert.truthy(H.wait_event(one, "source.recovered"))
      assert.same({ v = 1 }, one:get("app"))
      k.produce(t, 1, "b", '"new"')
      assert.truthy(e:run_until(function() return e:get("app.b") == "new" end))
      assert.truthy(H.wait_event(e, "source.recovered"))
      assert.same({ a = { v = 1 }, b = "new" }, e:get("app"))
      -- The keyed source follows its key again too, from where it was in the log.
      k.produce(t, 0, "a", '{"v": 2}')
      assert.truthy(one:run_until(function() return one:get("app.v") == 2 end))
      assert.truthy(e:run_until(function() return e:get("app.a.v") == 2 end))
    end)

    it("starts from the cache while the cluster is down, then follows it again",
      function()
      local t = topic()
      k.topic(t, 1)
      k.produce(t, 0, "a", '{"v": 1}')
      local cache = H.tmpdir("kafka-cache")
      if cache:sub(1, 1) ~= "/" then cache = os.getenv("PWD") .. "/" .. cache end
      local text = ([[
local rc = require "reactcfg"
return rc.policy { cache = %q, components = {
  app = { source = rc.kafka { brokers = %q, topic = %q, %s }, startup = "cached" },
} }
]]):format(cache, k.bootstraps, t, QUICK)
      local e = H.engine(text)
      assert.truthy(e:run_until(function() return e:get("app.a.v") == 1 end))
      e:run("100ms")
      k.down(-1)
      local e2 = H.engine(text)
      assert.same({ a = { v = 1 } }, e2:get("app"))   -- from the cache, stale
      assert.truthy(wait_for(e2, "source.error", "Kafka: "))
      k.up(-1)
      k.produce(t, 0, "a", '{"v": 2}')
      assert.truthy(e2:run_until(function() return e2:get("app.a.v") == 2 end))
      assert.truthy(wait_for(e2, "component.state", "cached value is replaced"))
      H.rmdir(cache)
    end)
  end)
end)
