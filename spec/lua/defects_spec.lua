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

describe("source errors", function()
  after_each(H.cleanup)

  it("are one event per failure: the same failing file read again is not news", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  app = rc.file("app.json", { limits = { max_bytes = 20 } }),
} }
]], { ["app.json"] = '{"v": 1}' })
    e:events()
    local function errors(wait)
      e:run(wait or "300ms")
      return #H.events(e, "source.error")
    end
    H.write(dir .. "/app.json", '{"v": 2, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxx"}')
    e:run_until(function() return #H.events(e, "source.error") > 0 end, "5s")
    -- the same oversized file read again (an attribute change, a second event)
    os.execute("touch '" .. dir .. "/app.json'")
    assert.equal(0, errors())
    assert.equal(1, e:get("app.v"))
    -- a good file, then the same failure again: that is news
    H.write(dir .. "/app.json", '{"v": 3}')
    e:run_until(function() return e:get("app.v") == 3 end, "5s")
    e:events()
    H.write(dir .. "/app.json", '{"v": 4, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxx"}')
    assert.equal(1, errors("500ms"))
  end)
end)
