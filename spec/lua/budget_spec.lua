-- SPDX-License-Identifier: MIT (see LICENSE)
-- The time budget nothing escapes (issue 15, item 1): message handlers, coroutines,
-- patterns and the library's C loops are stopped like plain loops, finalizers are
-- refused, and after a stop the engine goes on: later changes commit, the same
-- functions run again, a reload works. Each case would hang (ctest's timeout) before.
local H = require "spec.lua.helpers"

local function errors(e, n)
  local got = {}
  e:run_until(function()
    for _, ev in ipairs(H.events(e, "policy.error")) do got[#got + 1] = ev end
    return #got >= n
  end, "10s")
  return got
end

describe("the time budget", function()
  after_each(H.cleanup)

  it("stops on_change in a looping message handler, and on_change runs again later",
    function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
local calls = 0
return rc.policy {
  limits = { time = "100ms" },
  components = { s = rc.file "s.json" },
  on_change = function(changes)
    calls = calls + 1
    if calls == 2 then
      xpcall(function() error("x") end, function() while true do end end)
    elseif calls == 3 then
      error("on_change ran again, call " .. calls)
    end
  end,
}
]], { ["s.json"] = '{"n": 1}' })
    e:events()
    H.write(dir .. "/s.json", '{"n": 2}')
    local errs = errors(e, 1)
    assert.matches("on_change: .*stopped: the policy ran longer than its time budget of 100 ms",
      errs[1].message)
    assert.equal(2, e:get("s.n"))
    H.write(dir .. "/s.json", '{"n": 3}')
    errs = errors(e, 1)
    assert.matches("on_change ran again, call 3", errs[1].message)
    assert.equal(3, e:get("s.n"))
  end)

  it("stops an update stuck in a pattern or a coroutine; the next value applies", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
local spin = coroutine.wrap(function() while true do end end)
return rc.policy {
  limits = { time = "100ms" },
  components = {
    s = { source = rc.file "s.json",
          update = function(v)
            if v.mode == "pattern" then
              string.find(("a"):rep(40), ("a*"):rep(40) .. "b")
            elseif v.mode == "coroutine" then
              spin()
            elseif v.mode == "move" then
              table.move({}, 1, 1 << 62, 2)
            end
            return v
          end },
  },
}
]], { ["s.json"] = '{"mode": "none"}' })
    e:events()
    e:commits()
    for _, mode in ipairs { "pattern", "coroutine", "move" } do
      H.write(dir .. "/s.json", ('{"mode": "%s"}'):format(mode))
      local errs = errors(e, 1)
      assert.matches("component 's': update: .*stopped: the policy ran longer than its time "
        .. "budget of 100 ms", errs[1].message, 1, false, mode)
      assert.equal("none", e:get("s.mode"))
    end
    H.write(dir .. "/s.json", '{"mode": "none", "n": 1}')
    assert.equal(1, #H.commits(e, 1))
    assert.equal(1, e:get("s.n"))
  end)

  it("leaves the engine able to reload after a stopped evaluation", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy {
  limits = { time = "100ms" },
  components = { s = { source = rc.file "s.json",
                       update = function(v) while true do end end } },
}
]], { ["s.json"] = '{"n": 1}' })
    e:events()
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = { s = rc.file "s.json" } }
]])
    assert(H.wait_event(e, "policy.reloaded"))
    assert.equal(1, e:get("s.n"))
  end)

  it("refuses finalizers, whose code Lua runs with hooks off", function()
    local err = H.load_error([[
local rc = require "reactcfg"
local t = setmetatable({}, { __gc = function() while true do end end })
return rc.policy { components = {} }
]])
    assert.matches("policy.lua:2: setmetatable: finalizers %(__gc%) are not available", err)
  end)
end)
