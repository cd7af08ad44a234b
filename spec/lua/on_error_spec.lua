-- SPDX-License-Identifier: MIT (see LICENSE)
-- on_error: what a source error does to the component's value: keep the last good one,
-- fall back to the default, or let a handler decide.
local H = require "spec.lua.helpers"

describe("on_error", function()
  local e, dir
  after_each(H.cleanup)

  it("keeps the last good value by default and falls back to the default when asked",
    function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  keep = { source = rc.file "a.json", default = { v = 0 } },
  fall = { source = rc.file "b.json", default = { v = 0 }, on_error = "default" },
} }
]], { ["a.json"] = '{"v": 1}', ["b.json"] = '{"v": 1}' })
    e:commits()
    H.write(dir .. "/a.json", '{"v": ')
    H.write(dir .. "/b.json", '{"v": ')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified fall.v" }, H.change_strings(commits[1]))
    assert.equal(1, e:get("keep.v"))
    assert.equal(0, e:get("fall.v"))
  end)

  it("lets a handler log and return a fallback value", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy {
  components = { s = { source = rc.file "s.json" } },
  on_error = function(err, ctx)
    return { failed = true, code = err.code, line = err.line, was = ctx.previous.v }
  end,
}
]], { ["s.json"] = '{"v": 1}' })
    e:commits()
    H.write(dir .. "/s.json", '{\n"v": }')
    assert.equal(1, #H.commits(e, 1))
    assert.same({ failed = true, code = "EPARSE", line = 2, was = 1 }, e:get("s"))
    H.write(dir .. "/s.json", '{"v": 5}')
    assert.equal(1, #H.commits(e, 1))
    assert.same({ v = 5 }, e:get("s"))
  end)
end)
