-- SPDX-License-Identifier: MIT (see LICENSE)
-- Hot reload of the policy file and the limits a policy runs under (issue #4).
local H = require "spec.lua.helpers"

local wait_event = H.wait_event

local V1 = [[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json" },
  b = { source = rc.file "b.json" },
} }
]]

describe("policy hot reload", function()
  local e, dir
  after_each(H.cleanup)

  it("applies a new version in one commit: removed components stop, new ones start",
    function()
    e, dir = H.engine(V1, { ["a.json"] = '{"x": 1}', ["b.json"] = '{"y": 1}',
                            ["c.json"] = '{"z": 1}' })
    e:commits()
    e:events()
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", update = function(v) return { x = v.x * 10 } end },
  c = { source = rc.file "c.json" },
} }
]])
    local ev = wait_event(e, "policy.reloaded")
    assert.matches("policy reloaded: 2 components %(1 sources kept, 1 started, 1 stopped%)",
      ev.message)
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "added c", "modified a.x", "removed b" }, H.change_strings(commits[1], true))
    assert.equal(10, e:get("a.x"))
    -- b's source is stopped; a's kept source still delivers through the new update.
    H.write(dir .. "/b.json", '{"y": 2}')
    H.write(dir .. "/a.json", '{"x": 2}')
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified a.x" }, H.change_strings(commits[1], true))
    assert.equal(20, e:get("a.x"))
  end)

  it("keeps the running policy when the new version does not load", function()
    e, dir = H.engine(V1, { ["a.json"] = '{"x": 1}', ["b.json"] = '{"y": 1}' })
    e:events()
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", debounce = "fast" },
} }
]])
    local ev = wait_event(e, "policy.error")
    assert.matches("policy reload failed, the running policy stays", ev.message)
    assert.matches("invalid duration", ev.message)
    assert.equal(3, ev.line)
    e:commits()
    H.write(dir .. "/b.json", '{"y": 2}')
    assert.equal(1, #H.commits(e, 1))
    assert.equal(2, e:get("b.y"))
  end)

  it("keeps the running policy when the new version's first evaluation fails", function()
    e, dir = H.engine(V1, { ["a.json"] = '{"x": 1}', ["b.json"] = '{"y": 1}',
                            ["c.json"] = '{}' })
    e:events()
    e:commits()
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", update = function(v) return v.missing.field end },
  c = { source = rc.file "c.json" },
} }
]])
    local errs = {}
    e:run_until(function()
      for _, ev in ipairs(H.events(e, "policy.error")) do errs[#errs + 1] = ev end
      return #errs >= 2
    end, "5s")
    assert.equal(2, #errs)
    assert.equal("a", errs[1].component)
    assert.matches("attempt to index a nil value", errs[1].message)
    assert.matches("policy reload rejected: its first evaluation failed", errs[2].message)
    e:run("200ms")
    assert.equal(0, #e:commits())
    assert.is_nil(e:get("c"))
    -- The old policy (and its sources) still runs.
    H.write(dir .. "/b.json", '{"y": 3}')
    assert.equal(1, #H.commits(e, 1))
    assert.equal(3, e:get("b.y"))
    -- A fixed version then goes in.
    H.write(dir .. "/policy.lua", V1:gsub("b = ", "bb = "))
    wait_event(e, "policy.reloaded")
    assert.equal(3, e:get("bb.y"))
  end)
end)

describe("policy limits", function()
  local e, dir
  after_each(H.cleanup)

  it("stops an update that loops forever inside pcall within the policy's time budget",
    function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy {
  limits = { time = "50ms" },
  components = {
    s = { source = rc.file "s.json",
          update = function(v)
            if v.spin then pcall(function() while true do end end) end
            return v
          end },
  },
}
]], { ["s.json"] = '{"spin": false}' })
    e:events()
    H.write(dir .. "/s.json", '{"spin": true}')
    local ev = wait_event(e, "policy.error")
    assert.matches("time budget of 50 ms", ev.message)
    assert.is_false(e:get("s.spin"))
  end)

  it("stops an update whose table grows forever at the policy's memory cap", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy {
  limits = { memory = "32MB", time = "10s" },
  components = {
    s = { source = rc.file "s.json",
          update = function(v)
            if v.grow then
              local t = {}
              while true do t[#t + 1] = ("x"):rep(64) .. #t end
            end
            return v
          end },
  },
}
]], { ["s.json"] = '{"grow": false}' })
    e:events()
    e:commits()
    H.write(dir .. "/s.json", '{"grow": true}')
    local ev = wait_event(e, "policy.error")
    assert.matches("not enough memory", ev.message)
    assert.is_false(e:get("s.grow"))
    -- The state recovers: a later change evaluates normally.
    H.write(dir .. "/s.json", '{"grow": false, "n": 1}')
    assert.equal(1, #H.commits(e, 1))
    assert.equal(1, e:get("s.n"))
  end)

  it("rejects limits it does not know, with the line", function()
    local d = H.tmpdir("limits")
    H.write(d .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy {
  limits = { cpu = "1s" },
  components = {},
}
]])
    local out, code = H.sh(H.bin("reactcfg-lua") .. " --check " .. d .. "/policy.lua")
    H.rmdir(d)
    assert.equal(1, code)
    assert.matches("policy.lua:3: unknown limit 'cpu'", out)
  end)
end)

describe("the sandbox", function()
  local rc = require "reactcfg"
  after_each(H.cleanup)

  local function load_error(body)
    local d = H.tmpdir("sandbox")
    H.write(d .. "/policy.lua", "local rc = require 'reactcfg'\n" .. body)
    local e, err = rc.engine(d .. "/policy.lua")
    if e then e:close() end
    H.rmdir(d)
    return err
  end

  it("lets a policy require a module only when the embedder allows it", function()
    local d = H.tmpdir("allow")
    H.write(d .. "/policy.lua", [[
local rc = require "reactcfg"
local json = require "cjson"
return rc.policy { components = {
  s = { source = rc.lua_source(function(emit) emit(json.decode('{"a": 1}')) end) },
} }
]])
    local e, err = rc.engine(d .. "/policy.lua")
    assert.is_nil(e)
    assert.matches("policy.lua:2: module 'cjson' is not available to policies %(allowed: "
      .. "reactcfg%)", err)
    e = assert(rc.engine(d .. "/policy.lua", { allow = { "cjson" } }))
    assert(e:start())
    assert.equal(1, e:get("s.a"))
    e:close()
    H.rmdir(d)
  end)

  it("refuses debug.sethook, bytecode and changing the API's metatables", function()
    assert.matches("^.-policy.lua:2: undeclared global 'debug'",
      load_error("debug.sethook(print, 'l')\n"))
    assert.matches("^.-policy.lua:2: undeclared global 'load'",
      load_error("load(string.dump(function() end), 'x', 'b')\n"))
    assert.matches("^.-policy.lua:2: attempt to call a nil value %(field 'dump'%)",
      load_error("string.dump(function() end)\n"))
    assert.matches("^.-policy.lua:2: cannot change a protected metatable",
      load_error("setmetatable(rc, {})\n"))
    assert.matches("^.-policy.lua:2: cannot change a protected metatable",
      load_error("setmetatable(string, {})\n"))
  end)
end)

-- Issue 15, item 2: each policy version runs in a Lua state of its own.
describe("isolation between policy versions", function()
  local rc = require "reactcfg"
  after_each(H.cleanup)

  it("keeps what a rejected version did to shared state from the next version", function()
    local d = H.tmpdir("isolation")
    H.write(d .. "/s.json", '{"v": [[1]]}')
    H.write(d .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = { s = rc.file "s.json" } }
]])
    local e = assert(rc.engine(d .. "/policy.lua", { allow = { "cjson" } }))
    assert(e:start())
    e:events()
    -- A version that changes what it can reach (an allowed module's settings, the
    -- vocabulary, the string library), then fails its first evaluation.
    H.write(d .. "/policy.lua", [[
local rc = require "reactcfg"
local cjson = require "cjson"
cjson.encode_max_depth(1)
pcall(rawset, rc, "file", function() error("poisoned rc.file") end)
pcall(function() getmetatable("").__index.upper = function() error("poisoned") end end)
return rc.policy { components = {
  s = { source = rc.file "s.json", update = function(v) return v.missing.field end },
} }
]])
    local ev
    e:run_until(function()
      for _, x in ipairs(H.events(e, "policy.error")) do
        if x.message:match("reload rejected") then ev = x end
      end
      return ev ~= nil
    end, "5s")
    assert(ev, "the poisoning version was not rejected")
    -- The next version finds everything as it was.
    H.write(d .. "/policy.lua", [[
local rc = require "reactcfg"
local cjson = require "cjson"
return rc.policy { components = {
  s = { source = rc.file "s.json",
        update = function(v) return { json = cjson.encode(v), up = ("ok"):upper() } end },
} }
]])
    local got
    e:run_until(function()
      for _, x in ipairs(e:events()) do
        if x.event == "policy.reloaded" or x.event == "policy.error" then got = x end
      end
      return got ~= nil
    end, "5s")
    assert.equal("policy.reloaded", got and got.event, got and got.message)
    assert.equal('{"v":[[1]]}', e:get("s.json"))
    assert.equal("OK", e:get("s.up"))
    e:close()
    H.rmdir(d)
  end)

  it("closes the luv handles of a replaced version: its timers stop with it", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  ticks = rc.lua_source(function(emit, uv)
    local n = 0
    -- No stop function: the timer is left running when the source stops.
    uv.new_timer():start(5, 5, function()
      n = n + 1
      if not emit({ n = n }) then error("a timer of the replaced version still runs") end
    end)
  end),
} }
]])
    e:run("50ms")
    e:events()
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = { other = rc.env "RC_ISOLATION_UNSET" } }
]])
    assert(H.wait_event(e, "policy.reloaded"))
    e:run("200ms")
    assert.same({}, H.events(e, "policy.error"))
  end)
end)
