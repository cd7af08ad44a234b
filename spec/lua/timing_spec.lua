-- SPDX-License-Identifier: MIT (see LICENSE)
-- Timing policies on the virtual clock (issue #4 item 3): exact counts of evaluations and
-- commits for debounce (quiet period, max wait, computed per change) and throttle
-- (burst, last held value delivered), with no sleeps.
local H = require "helpers"

-- A session on `components` (the body of rc.policy's components table). Every
-- component gets an update that counts its evaluations in the value (`evals`).
local function session(components)
  return H.bench_session("local rc = require 'reactcfg'\n"
    .. "local evals = 0\n"
    .. "local function count(new) evals = evals + 1\n"
    .. "  if new == nil then return nil end\n"
    .. "  local out = rc.copy(new); out.evals = evals; return out end\n"
    .. "return rc.policy { components = {\n" .. components .. "\n} }\n")
end

describe("timing on the virtual clock", function()
  local s, dir
  after_each(function()
    if s then s:close() end
    H.rmdir(dir)
  end)

  it("debounce: a burst becomes one evaluation after the quiet period", function()
    s, dir = session([[s = { source = rc.lua_source(function() end), debounce = "200ms",
      update = count },]])
    local base = s.e:revision()
    for i = 1, 5 do
      s.e:push("s", { v = i })
      s.e:advance("100ms")               -- never 200 ms of quiet
    end
    assert.equal(base, s.e:revision())
    s.e:advance("99ms")
    assert.equal(base, s.e:revision())
    s.e:advance("1ms")
    assert.equal(base + 1, s.e:revision())
    assert.same({ v = 5, evals = 2 }, s.e:get("s")) -- 1: the start, 2: the burst
  end)

  it("debounce: max wait bounds a burst that never goes quiet", function()
    s, dir = session([[s = { source = rc.lua_source(function() end),
      debounce = { quiet = "100ms", max = "300ms" }, update = count },]])
    local base = s.e:revision()
    local at = {}
    for i = 1, 10 do                     -- a change every 50 ms for 500 ms
      s.e:push("s", { v = i })
      s.e:advance("50ms")
      if s.e:revision() > base + #at then at[#at + 1] = s.e:now() end
    end
    assert.same({ 300 }, at)             -- the first burst hits its max at 300 ms
    s.e:advance("100ms")
    assert.equal(base + 2, s.e:revision())
    assert.equal(10, s.e:get("s.v"))
    assert.equal(3, s.e:get("s.evals"))
  end)

  it("throttle: a burst of 3 at once, then one per interval, the last value kept",
    function()
    s, dir = session([[s = { source = rc.lua_source(function() end),
      throttle = { every = "1s", burst = 3 }, update = count },]])
    local base = s.e:revision()
    for i = 1, 6 do s.e:push("s", { v = i }) end
    assert.equal(base + 3, s.e:revision())  -- three tokens
    assert.equal(3, s.e:get("s.v"))
    s.e:advance("999ms")
    assert.equal(base + 3, s.e:revision())
    s.e:advance("1ms")                      -- one token: the last held value (6)
    assert.equal(base + 4, s.e:revision())
    assert.equal(6, s.e:get("s.v"))
    s.e:advance("10s")
    assert.equal(base + 4, s.e:revision())  -- nothing else was held
    assert.equal(5, s.e:get("s.evals"))     -- start + 3 + 1
  end)

  it("debounce computed per change by the policy", function()
    s, dir = session([[s = { source = rc.lua_source(function() end), update = count,
      debounce = function(new) return new.bulk and "1s" or 0 end },]])
    local base = s.e:revision()
    s.e:push("s", { v = 1 })
    assert.equal(base + 1, s.e:revision())  -- no delay
    s.e:push("s", { v = 2, bulk = true })
    s.e:advance("999ms")
    assert.equal(base + 1, s.e:revision())
    s.e:advance("1ms")
    assert.equal(base + 2, s.e:revision())
    assert.equal(2, s.e:get("s.v"))
  end)

  it("re-evaluates a dependant exactly once per change of its dependency", function()
    s, dir = session([[
      base = { source = rc.lua_source(function() end), default = { n = 0 } },
      d = { source = rc.lua_source(function() end), depends_on = { "base" },
            update = function(_, ctx) return count({ n = ctx.base.n }) end },]])
    assert.equal(1, s.e:get("d.evals"))
    s.e:push("base", { n = 1 })
    s.e:push("base", { n = 1 })             -- the same again: no evaluation
    s.e:push("base", { n = 2 })
    assert.equal(3, s.e:get("d.evals"))
    assert.equal(2, s.e:get("d.n"))
  end)
end)
