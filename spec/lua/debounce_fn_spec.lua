-- SPDX-License-Identifier: MIT (see LICENSE)
-- A debounce computed by the policy for each change.
local H = require "spec.lua.helpers"

describe("debounce computed by the policy", function()
  local e, dir
  after_each(H.cleanup)

  it("uses the delay a function returns for each change", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "s.json",
        debounce = function(new) return new.slow and "300ms" or 0 end },
} }
]], { ["s.json"] = '{"slow": false, "v": 0}' })
    e:commits()
    for i = 1, 3 do
      H.write(dir .. "/s.json", ('{"slow": true, "v": %d}'):format(i))
      e:run("50ms")
    end
    assert.equal(0, #e:commits())
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.equal(3, e:get("s.v"))
  end)
end)
