-- SPDX-License-Identifier: MIT (see LICENSE)
-- The Lua module's engine object cannot be misused into a hang or an abort: closing it
-- from inside its own run, durations libuv's cached clock would cut short, and
-- durations that are no durations.
local H = require "spec.lua.helpers"
local uv = require "luv"

local POLICY = [[
local rc = require "reactcfg"
return rc.policy { components = { mode = { source = rc.env "RC_LUAMOD_SPEC" } } }
]]

describe("the Lua module's engine", function()
  after_each(H.cleanup)

  it("closes when e:close() is called inside e:run_until's predicate, after the run", function()
    local e = H.engine(POLICY)
    local calls = 0
    local met = e:run_until(function()
      calls = calls + 1
      e:close()
      return false
    end, "200ms")
    assert.is_false(met)
    assert.equal(1, calls)   -- the run ended at once: the engine was to close
    assert.has_error(function() e:get("mode") end, "engine is closed")
  end)

  it("runs its whole duration even when its loop has not run for longer than that", function()
    local e = H.engine(POLICY)
    os.execute("sleep 0.3")   -- libuv's cached clock is now 300 ms behind
    local t0 = uv.hrtime()
    e:run("100ms")
    -- A lower bound only: a slow machine makes it longer, never shorter.
    assert.truthy(uv.hrtime() - t0 >= 100e6)
  end)

  it("refuses negative, NaN and infinite durations", function()
    local e = H.engine(POLICY)
    for _, d in ipairs({ -1, 0 / 0, math.huge, -math.huge }) do
      assert.has_error(function() e:run(d) end)
      assert.has_error(function() e:run_until(function() return false end, d) end)
    end
    e:run(0)   -- zero is a duration: one turn of the loop
  end)
end)
