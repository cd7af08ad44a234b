-- SPDX-License-Identifier: MIT (see LICENSE)
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

describe("an in-place write storm", function()
  after_each(H.cleanup)

  -- 1,500 writes in place (truncate, write, close) to `path`, sizes varying so that a
  -- read in the middle of one sees a truncated or partly written document; then no
  -- source.error may have been reported.
  local function storm(e, path)
    e:events()
    local writer = io.popen(("env -u LD_PRELOAD python3 -c '%s' '%s'"):format([[
import sys
p = sys.argv[1]
for i in range(1, 1501):
    with open(p, "w") as f:
        f.write("{\"n\": %d, \"pad\": \"%s\"}" % (i, "x" * (i % 97 * 40)))
print("done")
]], path))
    e:run_until(function() return e:get("app.n") == 1500 end, "30s")
    assert.equal("done", writer:read("l"))
    writer:close()
    e:run("300ms")
    assert.equal(1500, e:get("app.n"))
    local errs = H.events(e, "source.error")
    assert.equal(0, #errs, errs[1] and errs[1].message)
  end

  it("reports no source.error when every write is a complete document", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = { app = rc.file "app.json" } }
]], { ["app.json"] = '{"n": 0}' })
    storm(e, dir .. "/app.json")
  end)

  -- The path's directory is a symlink: the file was taken for a symlink's target in
  -- another directory, whose events skipped the check for a writer still at work. The
  -- same when the path is itself a symlink to a file beside it in that directory (its
  -- target's directory then differs from the path's by name only).
  local function storm_through_link(target)
    local dir = H.tmpdir("storm-link")
    assert(os.execute(("mkdir '%s/real' && ln -s real '%s/link'"):format(dir, dir)))
    H.write(dir .. "/real/" .. target, '{"n": 0}')
    if target ~= "app.json" then
      assert(os.execute(("ln -s '%s' '%s/real/app.json'"):format(target, dir)))
    end
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = { app = rc.file "link/app.json" } }
]])
    local e = assert(require("reactcfg").engine(dir .. "/policy.lua"))
    assert(e:start())
    local ok, err = pcall(storm, e, dir .. "/real/" .. target)
    e:close()
    H.rmdir(dir)
    assert(ok, err)
  end

  it("reports none either through a symlinked directory", function()
    storm_through_link("app.json")
  end)

  it("reports none either through a symlinked directory to a symlink beside its target",
    function()
    storm_through_link("app-real.json")
  end)
end)
