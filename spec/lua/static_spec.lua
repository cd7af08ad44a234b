-- SPDX-License-Identifier: MIT (see LICENSE)
-- dynamic = false: static components and paths are not changed while running;
-- the change is reported as restart.required.
local H = require "spec.lua.helpers"

describe("dynamic = false", function()
  local e, dir
  after_each(H.cleanup)

  it("keeps a static component and reports restart required with the paths", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  db = { source = rc.file "db.json", dynamic = false },
} }
]], { ["db.json"] = '{"url": "pg://a", "pool": 5}' })
    e:commits()
    e:events()
    H.write(dir .. "/db.json", '{"url": "pg://b", "pool": 5}')
    assert.truthy(H.wait_event(e, "restart.required"))
    -- (the events were drained by the wait; check the message via a second change)
    H.write(dir .. "/db.json", '{"url": "pg://c", "pool": 5}')
    local ev = H.wait_event(e, "restart.required")
    assert.matches("restart required: db.url changed", ev.message)
    assert.equal(0, #e:commits())
    assert.equal("pg://a", e:get("db.url"))
  end)

  it("applies the rest of a change and keeps only the static paths", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  server = { source = rc.file "server.json", dynamic = { port = false } },
} }
]], { ["server.json"] = '{"port": 80, "timeout": 5}' })
    e:commits()
    e:events()
    H.write(dir .. "/server.json", '{"port": 81, "timeout": 6}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified server.timeout" }, H.change_strings(commits[1]))
    assert.equal(80, e:get("server.port"))
    local ev = H.events(e, "restart.required")
    assert.equal(1, #ev)
    assert.matches("server.port", ev[1].message)
  end)
end)
