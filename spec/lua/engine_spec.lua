-- The engine driven in-process through require "reactcfg": commits, change lists,
-- errors with positions, defaults, dotenv and env sources.
local H = require "helpers"

local function change_strings(commit)
  local out = {}
  for _, c in ipairs(commit.changes) do
    out[#out + 1] = ("%s %s"):format(c.kind, c.path)
  end
  return out
end

describe("the engine", function()
  local e, dir
  after_each(function()
    if e then e:close() end
    if dir then H.rmdir(dir) end
    e, dir = nil, nil
  end)

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
      change_strings(commits[1]))
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
