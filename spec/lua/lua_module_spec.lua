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

  it("keeps the last `keep` revisions, commits and events, not one per commit forever",
    function()
    local dir = H.tmpdir("keep")
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = { n = rc.file "n.json" } }
]])
    local rc = require "reactcfg"
    assert.has_error(function() rc.engine(dir .. "/policy.lua", { keep = 0 }) end)
    local e = assert(rc.engine(dir .. "/policy.lua", { simulate = true, keep = 5 }))
    assert(e:start())
    for i = 1, 30 do e:push("n", { i = i }) end
    local last = e:revision()
    assert.equal(30, e:get("n.i"))
    local history = e:history()
    assert.equal(5, #history)
    assert.equal(last - 4, history[1].revision)
    assert.equal(last, history[5].revision)
    assert.equal(30 - 4, e:get("n.i", { revision = last - 4 }))
    assert.has_error(function() e:get("n.i", { revision = last - 5 }) end,
      ("revision %d is not kept (this session keeps the last 5)"):format(last - 5))
    assert.has_error(function() e:diff(1, last) end)
    assert.equal(1, #e:diff(last - 1, last))
    local commits = e:commits()   -- never drained until now: the last 5
    assert.equal(5, #commits)
    assert.equal(last, commits[5].revision)
    assert.truthy(#e:events() <= 5)
    e:close()
    H.rmdir(dir)
  end)
end)
