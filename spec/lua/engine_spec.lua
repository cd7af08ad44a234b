-- SPDX-License-Identifier: MIT (see LICENSE)
-- The engine driven in-process through require "reactcfg": commits, change lists,
-- errors with positions, defaults, dotenv and env sources.
local H = require "helpers"

describe("the engine", function()
  local e, dir
  after_each(H.cleanup)

  it("commits revision 1 with every present component at start", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  settings = { source = rc.file "app.json" },
  secrets = { source = rc.file ".env" },
  absent = { source = rc.file "none.json" },
  fallback = { source = rc.file "none2.json", default = { level = "info" } },
} }
]], { ["app.json"] = '{"db": {"host": "x", "pool": {"max": 5}}, "rules": [{"host": "a"}]}',
      [".env"] = 'export TOKEN="s3cr\\"et"\n# comment\nURL=http://x # inline\n' })
    assert.equal(1, e:revision())
    local commits = e:commits()
    assert.equal(1, #commits)
    assert.same({ "added fallback", "added secrets", "added settings" },  -- key order
      H.change_strings(commits[1]))
    assert.equal(5, e:get("settings.db.pool.max"))
    assert.equal("a", e:get("settings.rules[0].host"))  -- paths count from 0
    assert.equal('s3cr"et', e:get("secrets.TOKEN"))
    assert.equal("http://x", e:get("secrets.URL"))
    assert.same({ level = "info" }, e:get("fallback"))
    assert.is_nil(e:get("absent"))
  end)

  it("reports exactly the changed paths of a save", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = { settings = { source = rc.file "app.json" } } }
]], { ["app.json"] = '{"db": {"host": "x", "pool": {"max": 5}}, "rules": [{"host": "a"}], "flags": {}}' })
    e:commits()
    H.write(dir .. "/app.json",
      '{"db": {"host": "y", "pool": {"max": 5}}, "rules": [{"host": "a"}, {"host": "b"}], '
      .. '"flags": {"a.b": true}}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.equal(2, commits[1].revision)
    local ch = commits[1].changes
    assert.same({ path = "settings.db.host", kind = "modified", old = "x", new = "y" }, ch[1])
    assert.same({ path = 'settings.flags["a.b"]', kind = "added", new = true }, ch[2])
    assert.same({ path = "settings.rules[1]", kind = "added", new = { host = "b" } }, ch[3])
    assert.equal(3, #ch)
  end)

  it("keeps the last good value on a malformed save and reports file, line and column", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = { s = { source = rc.file "app.json" } } }
]], { ["app.json"] = '{"a": 1}' })
    e:events()
    e:commits()
    H.write(dir .. "/app.json", '{"a": 1,\n "b": }')
    local commits = H.commits(e, 0)
    assert.equal(0, #commits)
    local errs = H.events(e, "source.error")
    assert.equal(1, #errs)
    assert.equal("s", errs[1].component)
    assert.matches("app%.json$", errs[1].file)
    assert.equal(2, errs[1].line)
    assert.truthy(errs[1].column > 0)
    assert.equal(1, e:get("s.a"))
    H.write(dir .. "/app.json", '{"a": 2}')
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.equal(1, #H.events(e, "source.recovered"))
  end)

  it("debounces a burst of saves into one commit", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "app.json", debounce = { quiet = "150ms", max = "5s" } },
} }
]], { ["app.json"] = '{"n": 0}' })
    e:commits()
    for i = 1, 5 do
      H.write(dir .. "/app.json", ('{"n": %d}'):format(i))
      e:run("20ms")
    end
    local commits = H.commits(e, 1, "400ms")
    assert.equal(1, #commits)
    assert.same({ { path = "s.n", kind = "modified", old = 0, new = 5 } }, commits[1].changes)
  end)

  it("throttles a burst of saves and delivers the last held one later", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "app.json", throttle = { every = "300ms", burst = 2 } },
} }
]], { ["app.json"] = '{"n": 0}' })
    assert.equal(1, #e:commits())   -- the initial read is not throttled
    for i = 1, 6 do
      H.write(dir .. "/app.json", ('{"n": %d}'):format(i))
      e:run("20ms")
    end
    local now = e:commits()
    assert.equal(2, #now)             -- the burst: two at once, the rest held
    assert.equal(1, now[1].changes[1].new)
    assert.equal(2, now[2].changes[1].new)
    e:run("700ms")
    local later = e:commits()
    assert.equal(1, #later)           -- one release, with the last save
    assert.same({ { path = "s.n", kind = "modified", old = 2, new = 6 } }, later[1].changes)
    assert.equal(6, e:get("s.n"))
  end)

  it("follows environment variables set through the engine", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  mode = { source = rc.env "RC_SPEC_MODE", default = "production" },
} }
]])
    e:commits()
    assert.equal("production", e:get("mode"))
    e:setenv("RC_SPEC_MODE", "development")
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ { path = "mode", kind = "modified", old = "production", new = "development" } },
      commits[1].changes)
    e:setenv("RC_SPEC_MODE", nil)
    commits = H.commits(e, 1)
    assert.equal("production", commits[1].changes[1].new)
  end)

  it("stops an on_change handler that never returns and keeps running", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy {
  components = { s = { source = rc.file "app.json" } },
  on_change = function(changes, snapshot)
    if snapshot.s.spin then pcall(function() while true do end end) end
  end,
}
]], { ["app.json"] = '{"spin": false}' })
    e:events()
    e:commits()
    H.write(dir .. "/app.json", '{"spin": true}')
    assert.equal(1, #H.commits(e, 1))
    local errs = H.events(e, "policy.error")
    assert.equal(1, #errs)
    assert.matches("time budget", errs[1].message)
    H.write(dir .. "/app.json", '{"spin": false, "after": 1}')
    assert.equal(1, #H.commits(e, 1))
    assert.equal(1, e:get("s.after"))
  end)

  it("runs the policy's on_change with the changes and the new snapshot", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy {
  components = { s = { source = rc.file "app.json" } },
  on_change = function(changes, snapshot)
    if snapshot.s.fail then error("handler failed on purpose") end
  end,
}
]], { ["app.json"] = '{"fail": false}' })
    e:events()
    H.write(dir .. "/app.json", '{"fail": true}')
    H.commits(e, 1)
    local errs = H.events(e, "policy.error")
    assert.equal(1, #errs)
    assert.matches("handler failed on purpose", errs[1].message)
    assert.is_true(e:get("s.fail"))
  end)
end)

describe("dependencies and update functions", function()
  local e, dir
  after_each(H.cleanup)

  it("re-runs a dependant merged over its base, in one commit per save", function()
    -- `derived` is declared first: evaluation follows dependencies, not declaration.
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  derived = { source = rc.file "local.json", depends_on = { "base" },
              update = function(new, ctx) return rc.merge(ctx.base, new) end },
  base = { source = rc.file "base.json" },
} }
]], { ["base.json"] = '{"db": {"host": "a", "port": 1}, "tags": ["x"]}',
      ["local.json"] = '{"db": {"port": 2}}' })
    assert.equal(1, #e:commits())
    assert.same({ db = { host = "a", port = 2 }, tags = { "x" } }, e:get("derived"))
    H.write(dir .. "/base.json", '{"db": {"host": "b", "port": 1}, "tags": ["x"]}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified base.db.host", "modified derived.db.host" },
      H.change_strings(commits[1]))
    assert.equal("b", e:get("derived.db.host"))
    assert.equal(2, e:get("derived.db.port"))
    H.write(dir .. "/local.json", '{"db": {"port": 3}}')
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified derived.db.port" }, H.change_strings(commits[1]))
  end)

  it("passes the component's previous value as ctx.previous", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "app.json",
        update = function(new, ctx)
          local n = ctx.previous and ctx.previous.count or 0
          return { count = n + 1, v = new.v, was = ctx.previous and ctx.previous.v }
        end },
} }
]], { ["app.json"] = '{"v": 1}' })
    assert.same({ count = 1, v = 1 }, e:get("s"))
    e:commits()
    H.write(dir .. "/app.json", '{"v": 2}')
    assert.equal(1, #H.commits(e, 1))
    assert.same({ count = 2, v = 2, was = 1 }, e:get("s"))
    -- Saving the same content again is no change: update does not run.
    H.write(dir .. "/app.json", '{"v": 2}')
    assert.equal(0, #H.commits(e, 0))
    assert.equal(2, e:get("s.count"))
  end)

  it("re-evaluates a dependant without update to the same value", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json" },
  b = { source = rc.file "b.json", depends_on = { "a" } },
} }
]], { ["a.json"] = '{"x": 1}', ["b.json"] = '{"y": 1}' })
    e:commits()
    H.write(dir .. "/a.json", '{"x": 2}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified a.x" }, H.change_strings(commits[1]))
    assert.same({ y = 1 }, e:get("b"))
  end)

  it("keeps the previous value and reports when update raises; the rest commits", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  base = { source = rc.file "base.json" },
  d = { source = rc.file "d.json", depends_on = { "base" },
        update = function(new, ctx)
          if ctx.base.fail == "raise" then error("refusing on purpose") end
          if ctx.base.fail == "function" then return { f = print } end
          return rc.merge(ctx.base, new)
        end },
} }
]], { ["base.json"] = '{"fail": false, "n": 1}', ["d.json"] = '{"own": true}' })
    e:events()
    e:commits()
    H.write(dir .. "/base.json", '{"fail": "raise", "n": 2}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified base.fail", "modified base.n" }, H.change_strings(commits[1]))
    assert.same({ fail = false, n = 1, own = true }, e:get("d"))
    local errs = H.events(e, "policy.error")
    assert.equal(1, #errs)
    assert.equal("d", errs[1].component)
    assert.matches("refusing on purpose", errs[1].message)
    H.write(dir .. "/base.json", '{"fail": "function", "n": 3}')
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ fail = false, n = 1, own = true }, e:get("d"))
    errs = H.events(e, "policy.error")
    assert.equal(1, #errs)
    assert.equal("d", errs[1].component)
    assert.matches("cannot be a config value", errs[1].message)
  end)

  it("runs update at start even when the source has no value", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  base = { source = rc.file "base.json" },
  d = { source = rc.file "none.json", depends_on = { "base" },
        update = function(new, ctx) return { new = new == nil, n = ctx.base.n } end },
  alone = { source = rc.file "none2.json",
            update = function(new) return { got = new == nil } end },
} }
]], { ["base.json"] = '{"n": 1}' })
    assert.same({ new = true, n = 1 }, e:get("d"))
    assert.same({ got = true }, e:get("alone"))
    e:commits()
    H.write(dir .. "/base.json", '{"n": 2}')
    assert.equal(1, #H.commits(e, 1))
    assert.same({ new = true, n = 2 }, e:get("d"))
  end)

  it("removes the component when update returns nil", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.file "app.json",
        update = function(new) if not new.off then return new end end },
} }
]], { ["app.json"] = '{"off": false}' })
    e:commits()
    assert.same({ off = false }, e:get("s"))
    H.write(dir .. "/app.json", '{"off": true}')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "removed s" }, H.change_strings(commits[1]))
    assert.is_nil(e:get("s"))
  end)
end)
