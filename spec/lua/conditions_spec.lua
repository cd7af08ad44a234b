-- SPDX-License-Identifier: MIT (see LICENSE)
-- Conditions: a component whose condition is false has its source stopped and its
-- default in force; the condition is evaluated again when what it reads changes.
local H = require "spec.lua.helpers"

describe("conditions", function()
  local e, dir
  after_each(H.cleanup)

  local POLICY = [[
local rc = require "reactcfg"
return rc.policy { components = {
  dev = { source = rc.file "dev.json", default = { debug = false },
          condition = function(c) return c.mode == "development" end },
  mode = { source = rc.env "RC_SPEC_MODE", default = "production" },
} }
]]

  it("keeps an inactive component at its default with its source stopped", function()
    e, dir = H.engine(POLICY, { ["dev.json"] = '{"debug": true}' })
    assert.same({ debug = false }, e:get("dev"))
    local states = H.events(e, "component.state")
    assert.equal(1, #states)
    assert.matches("component 'dev' is inactive: its condition is false", states[1].message)
    e:commits()
    -- The source is stopped: saving its file commits nothing.
    H.write(dir .. "/dev.json", '{"debug": "changed"}')
    e:run("400ms")
    assert.equal(0, #e:commits())
    assert.same({ debug = false }, e:get("dev"))
  end)

  it("starts the source when the condition turns true and stops it again", function()
    e, dir = H.engine(POLICY, { ["dev.json"] = '{"debug": true}' })
    e:commits()
    e:events()
    e:setenv("RC_SPEC_MODE", "development")
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified dev.debug", "modified mode" }, H.change_strings(commits[1]))
    assert.same({ debug = true }, e:get("dev"))
    local states = H.events(e, "component.state")
    assert.equal(1, #states)
    assert.matches("is active", states[1].message)
    -- Active: the file is watched now.
    H.write(dir .. "/dev.json", '{"debug": 2}')
    assert.equal(1, #H.commits(e, 1))
    assert.equal(2, e:get("dev.debug"))
    e:events()
    e:setenv("RC_SPEC_MODE", nil)
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ debug = false }, e:get("dev"))
    assert.matches("is inactive", H.events(e, "component.state")[1].message)
    H.write(dir .. "/dev.json", '{"debug": 3}')
    e:run("400ms")
    assert.equal(0, #e:commits())
  end)

  it("settles a condition that reads a component declared after it", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", condition = function(c) return c.b and c.b.on end },
  b = { source = rc.file "b.json" },
} }
]], { ["a.json"] = '{"x": 1}', ["b.json"] = '{"on": false}' })
    assert.is_nil(e:get("a"))
    e:commits()
    H.write(dir .. "/b.json", '{"on": true}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "added a", "modified b.on" }, H.change_strings(commits[1]))
  end)

  it("treats a condition that raises as false at start and reports it", function()
    e = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", condition = function(c) return c.nope.x end },
} }
]], { ["a.json"] = '{"x": 1}' })
    assert.is_nil(e:get("a"))
    local errs = H.events(e, "policy.error")
    assert.equal(1, #errs)
    assert.matches("condition reads unknown component 'nope'", errs[1].message)
  end)
end)
