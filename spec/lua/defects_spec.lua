-- The smaller defects of issue 15, item 8, each with the case that showed it.
local H = require "spec.lua.helpers"

describe("change paths", function()
  after_each(H.cleanup)

  it("quote every control byte, so keys that differ after a NUL never collide", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = { app = rc.file "app.json" } }
]], { ["app.json"] = '{"x": 0}' })
    e:commits()
    H.write(dir .. "/app.json", '{"a\\u0000b": 1, "a\\u0000c": 2, "t\\tab": 3}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ 'added app["a\\x00b"]', 'added app["a\\x00c"]', 'added app["t\\x09ab"]',
                  "removed app.x" }, H.change_strings(commits[1], true))
    assert.equal(2, e:get('app["a\\x00c"]'))
  end)
end)
