-- SPDX-License-Identifier: MIT (see LICENSE)
-- Startup policies and the last-known-good cache (issue #6 item 6), with Lua sources
-- whose first value comes late, as a remote source's does.
local H = require "helpers"
local rc = require "reactcfg"

-- A component whose source emits `value` after `delay_ms` (never when nil).
local function late(value, delay_ms, extra)
  return ([[{ source = rc.lua_source(function(emit, uv)
      local t = uv.new_timer()
      %s
      return function() t:close() end
    end)%s }]]):format(delay_ms and ("t:start(%d, 0, function() emit(%s) end)")
      :format(delay_ms, value) or "", extra or "")
end

local function policy(body)
  return "local rc = require 'reactcfg'\nreturn rc.policy {\n" .. body .. "\n}\n"
end

describe("startup", function()
  after_each(H.cleanup)

  it("waits for a late first value so that revision 1 holds it", function()
    local e = H.engine(policy("components = { s = " ..
      late("{ ready = true }", 150, ", startup = { mode = 'wait', timeout = '5s' }") .. " }"))
    assert.equal(1, e:revision())
    assert.same({ ready = true }, e:get("s"))
  end)

  it("starts without a value that does not come in time, and says so", function()
    local e = H.engine(policy("components = { s = " ..
      late("1", nil, ", default = 0, startup = { mode = 'wait', timeout = '100ms' }") .. " }"))
    assert.equal(0, e:get("s"))
    local errs = H.events(e, "source.error")
    assert.equal(1, #errs)
    assert.matches("no first value within 100 ms; starting without it", errs[1].message)
  end)

  it("fails to start, naming every component that got no value", function()
    local dir = H.tmpdir("startup")
    H.write(dir .. "/policy.lua", policy("components = {\n a = " ..
      late("1", nil, ", startup = { mode = 'fail', timeout = '100ms' }") .. ",\n b = " ..
      late("1", nil, ", startup = { mode = 'fail', timeout = '150ms' }") .. ",\n c = " ..
      late("1", 20, ", startup = 'fail'") .. " }"))
    local e = assert(rc.engine(dir .. "/policy.lua"))
    local ok, err = e:start()
    e:close()
    H.rmdir(dir)
    assert.is_nil(ok)
    assert.matches('start failed: 2 components with startup = "fail" got no value: '
      .. "a %(no answer in time%); b %(no answer in time%)", err)
  end)

  it("starts from the cached value, stale until the source answers", function()
    local body = "cache = 'cache',\ncomponents = { s = %s }"
    -- First run: the source answers; its value is written to the cache.
    local e, dir = H.engine(policy(body:format(late("{ v = 1 }", 10, ", startup = 'cached'"))))
    e:run_until(function() return e:get("s.v") == 1 end, "5s")
    e:close()
    local f = assert(io.open(dir .. "/cache/s.json"))
    assert.matches('"value":{"v":1}', f:read("a"))
    f:close()
    -- Second run: the source is slow; revision 1 has the cached value.
    H.write(dir .. "/policy.lua", policy(body:format(late("{ v = 2 }", 300,
      ", startup = 'cached'"))))
    e = assert(rc.engine(dir .. "/policy.lua"))
    assert(e:start())
    assert.equal(1, e:get("s.v"))
    local states = H.events(e, "component.state")
    assert.matches("starting from the cached value saved %d+ s ago; stale", states[1].message)
    e:run_until(function() return e:get("s.v") == 2 end, "5s")
    assert.equal(2, e:get("s.v"))
    assert.matches("the source answered", H.events(e, "component.state")[1].message)
    e:close()
  end)

  it("caches the last value the policy accepted, never one validate rejected", function()
    -- s answers v = 1, then v = -1 (rejected by validate); t's later change commits a
    -- revision, which writes the cache: s's entry must still be the accepted v = 1.
    local e, dir = H.engine(policy([[cache = 'cache',
components = {
  s = { source = rc.lua_source(function(emit, uv)
      local t, n = uv.new_timer(), 0
      t:start(10, 40, function() n = n + 1; if n <= 2 then emit({ v = n == 1 and 1 or -1 }) end end)
      return function() t:close() end
    end), startup = 'cached',
    validate = function(v) return v.v > 0, "v must be positive" end },
  t = ]] .. late("{ w = 1 }", 150, ", startup = 'cached'") .. [[ }]]))
    assert.truthy(e:run_until(function() return e:get("t.w") == 1 end, "5s"))
    assert.equal(1, e:get("s.v"))
    assert.equal(1, #H.events(e, "change.rejected"))
    e:close()
    local f = assert(io.open(dir .. "/cache/s.json"))
    assert.matches('"value":{"v":1}', f:read("a"))
    f:close()
  end)

  it("caches the last value a reload module accepted, never one it refused", function()
    -- s (with a transform: processed) and p (plain) answer v = 1, then v = -1, which the
    -- module refuses; t's later change commits: both cache entries stay at v = 1.
    local function twice()
      return [[{ source = rc.lua_source(function(emit, uv)
        local t, n = uv.new_timer(), 0
        t:start(10, 40, function() n = n + 1; if n <= 2 then emit({ v = n == 1 and 1 or -1 }) end end)
        return function() t:close() end
      end), startup = 'cached']]
    end
    local e, dir = H.engine(policy([[cache = 'cache',
components = {
  s = ]] .. twice() .. [[, transform = function(v) return v end },
  p = ]] .. twice() .. [[ },
  t = ]] .. late("{ w = 1 }", 150, ", startup = 'cached'") .. [[ },
modules = { guard = { paths = { "s.**", "p.**" }, apply = function(changes, snap)
  if snap.s.v < 0 or snap.p.v < 0 then return false, "negative" end
end } }]]))
    assert.truthy(e:run_until(function() return e:get("t.w") == 1 end, "5s"))
    assert.equal(1, e:get("s.v"))
    assert.equal(1, e:get("p.v"))
    assert.truthy(#H.events(e, "reload.failed") >= 1)
    e:close()
    for _, name in ipairs({ "s", "p" }) do
      local f = assert(io.open(dir .. "/cache/" .. name .. ".json"))
      assert.matches('"value":{"v":1}', f:read("a"), nil, true)
      f:close()
    end
  end)

  it("does not cache secret components unless the policy allows it", function()
    local e, dir = H.engine(policy("cache = { dir = 'cache' },\ncomponents = { s = " ..
      late("{ v = 1 }", 10, ", startup = 'cached', secret = true") .. " }"))
    e:run_until(function() return e:get("s", { reveal = true }) ~= nil end, "5s")
    e:run("50ms")
    assert.is_nil(io.open(dir .. "/cache/s.json"))
  end)
end)
