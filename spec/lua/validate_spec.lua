-- SPDX-License-Identifier: MIT (see LICENSE)
-- validate, transform, filter, only/ignore and force: the per-component rules that
-- decide whether a new value is applied, each through a real engine.
local H = require "spec.lua.helpers"

describe("validate, transform and filter", function()
  local e, dir
  after_each(H.cleanup)

  it("rejects a value that fails validation, keeps the old one and says why", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  limits = { source = rc.file "limits.json",
             validate = function(v) return v.rps > 0, "rps must be positive" end },
} }
]], { ["limits.json"] = '{"rps": 10}' })
    e:commits()
    e:events()
    H.write(dir .. "/limits.json", '{"rps": -1}')
    assert.truthy(H.wait_event(e, "change.rejected"))
    e:run("300ms")
    assert.equal(0, #e:commits())
    assert.equal(10, e:get("limits.rps"))
    H.write(dir .. "/limits.json", '{"rps": 20}')
    assert.equal(1, #H.commits(e, 1))
    assert.equal(20, e:get("limits.rps"))
  end)

  it("reports the reason in the rejection event", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  limits = { source = rc.file "limits.json",
             validate = function(v) return v.rps > 0, "rps must be positive" end },
} }
]], { ["limits.json"] = '{"rps": 10}' })
    e:events()
    H.write(dir .. "/limits.json", '{"rps": 0}')
    local got = H.wait_event(e, "change.rejected")
    assert.equal("limits", got.component)
    assert.matches("rps must be positive; the previous value stays", got.message)
  end)

  it("transforms a value before update and validation", function()
    e = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "s.json",
        transform = function(v) return { port = tonumber(v.port) } end,
        validate = function(v) return math.type(v.port) == "integer", "port" end },
} }
]], { ["s.json"] = '{"port": "8080"}' })
    assert.same({ port = 8080 }, e:get("s"))
  end)

  it("drops changes a filter refuses", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "s.json",
        filter = function(new, ctx) return not new.draft end },
} }
]], { ["s.json"] = '{"v": 1}' })
    e:commits()
    H.write(dir .. "/s.json", '{"v": 2, "draft": true}')
    assert.truthy(H.wait_event(e, "change.filtered"))
    assert.equal(0, #e:commits())
    assert.same({ v = 1 }, e:get("s"))
    H.write(dir .. "/s.json", '{"v": 3}')
    assert.equal(1, #H.commits(e, 1))
    assert.same({ v = 3 }, e:get("s"))
  end)

  it("counts only changes inside 'only' and outside 'ignore'", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "s.json", only = { "db" }, ignore = { "db.comment" } },
} }
]], { ["s.json"] = '{"db": {"host": "a", "comment": "x"}, "other": 1}' })
    e:commits()
    H.write(dir .. "/s.json", '{"db": {"host": "a", "comment": "y"}, "other": 2}')
    -- The write was read and both of its changes were judged: one outside 'only', one
    -- inside 'ignore' (a missed write, or a rule that let one through, fails here).
    local filtered = H.wait_event(e, "change.filtered")
    assert.truthy(filtered)
    assert.equal("s", filtered.component)
    assert.matches("2 changes outside 'only' or inside 'ignore'", filtered.message)
    e:run("200ms")   -- and no commit follows
    assert.equal(0, #e:commits())
    assert.equal(1, e:get("s.other"))
    assert.equal("x", e:get("s.db.comment"))
    H.write(dir .. "/s.json", '{"db": {"host": "b", "comment": "y"}, "other": 2}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    -- A counted change applies the whole new value, ignored paths included.
    assert.same({ "modified s.db.comment", "modified s.db.host", "modified s.other" },
      H.change_strings(commits[1]))
  end)

  it("notifies a force component even when the content did not change", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "s.json", force = true },
} }
]], { ["s.json"] = '{"v": 1}' })
    e:commits()
    H.write(dir .. "/s.json", '{"v": 1}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "touched s" }, H.change_strings(commits[1]))
  end)
end)
