-- Conditions, validation, filtering and the other per-component rules of the policy
-- language (issue #4), each through a real engine.
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
    assert.truthy(H.wait_event(e, "change.filtered"))
    e:run("200ms")
    assert.equal(0, #e:commits())
    assert.equal(1, e:get("s.other"))
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

describe("secret", function()
  local e, dir
  after_each(H.cleanup)

  it("redacts secret values in reads and commits but gives them to the policy", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
local seen
return rc.policy {
  components = {
    db = { source = rc.file "db.json", secret = { "password" } },
    token = { source = rc.file "token.txt", format = "text", secret = true },
    echo = { source = rc.file "db.json", depends_on = { "db" },
             update = function(_, ctx) return { len = #ctx.db.password } end },
  },
}
]], { ["db.json"] = '{"user": "u", "password": "hunter2"}', ["token.txt"] = "s3cr3t" })
    assert.same({ user = "u", password = "<redacted>" }, e:get("db"))
    assert.equal("<redacted>", e:get("token"))
    assert.equal("hunter2", e:get("db.password", { reveal = true }))
    assert.equal(7, e:get("echo.len"))
    e:commits()
    H.write(dir .. "/db.json", '{"user": "u", "password": "swordfish"}')
    local commits = H.commits(e, 1)
    for _, ch in ipairs(commits[1].changes) do
      if ch.path == "db.password" then
        assert.is_true(ch.secret)
        assert.equal("<redacted>", ch.new)
        assert.equal("<redacted>", ch.old)
      end
    end
  end)

  it("keeps secret file content out of parse error messages", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  t = { source = rc.file "c.toml", secret = true },
  env = { source = rc.file ".env", secret = true },
} }
]], { ["c.toml"] = 'password = "ok"', [".env"] = "TOKEN=ok" })
    e:events()
    H.write(dir .. "/c.toml", "password = hunter2secret")
    H.write(dir .. "/.env", "hunter2secret")
    local errs = {}
    e:run_until(function()
      for _, ev in ipairs(H.events(e, "source.error")) do errs[#errs + 1] = ev end
      return #errs >= 2
    end, "5s")
    assert.equal(2, #errs)
    for _, ev in ipairs(errs) do
      assert.is_nil(ev.message:find("hunter2", 1, true), ev.message)
      assert.truthy(ev.line > 0)
    end
    assert.matches("invalid value '...'", errs[1].message .. errs[2].message)
    -- A hint of the parser's own survives the redaction readably.
    e:events()
    H.write(dir .. "/c.toml", 'password = "hunter2secret')
    local ev = H.wait_event(e, "source.error")
    assert.is_nil(ev.message:find("hunter2", 1, true), ev.message)
    assert.truthy(ev.message:find("expected '...' before the end of the line (use triple "
      .. "quotes for a multi-line string)", 1, true), ev.message)
  end)

  it("redacts secrets in reactcfg-lua --run --json output", function()
    local d = H.tmpdir("secret-run")
    H.write(d .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  db = { source = rc.file "db.json", secret = { "password" } },
} }
]])
    H.write(d .. "/db.json", '{"user": "u", "password": "hunter2"}')
    local out = H.sh("timeout -s INT 1 " .. H.bin("reactcfg-lua") .. " --run --json "
      .. d .. "/policy.lua")
    H.rmdir(d)
    assert.matches('"path":"db"', out)
    assert.matches('"password":"<redacted>"', out)
    assert.is_nil(out:find("hunter2", 1, true))
  end)
end)

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

describe("Lua sources", function()
  local e
  after_each(H.cleanup)

  it("emit values from luv timers on the engine's loop and stop with the engine", function()
    e = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  ticks = { source = rc.lua_source(function(emit, uv, ctx)
    local n = 0
    emit({ n = n, name = ctx.name })
    local t = uv.new_timer()
    t:start(20, 20, function()
      n = n + 1
      emit({ n = n, name = ctx.name })
      if n == 3 then t:stop() end
    end)
    return function() t:close() end
  end) },
  parsed = { source = rc.lua_source(function(emit, uv, ctx)
    emit(ctx.parse('a = 1\nb = "x"', "toml"))
  end) },
} }
]])
    assert.same({ n = 0, name = "ticks" }, e:get("ticks"))
    assert.same({ a = 1, b = "x" }, e:get("parsed"))
    e:commits()
    local commits = H.commits(e, 3)
    assert.equal(3, #commits)
    assert.equal(3, e:get("ticks.n"))
  end)

  it("reports a source function that raises as a source error", function()
    e = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  bad = { source = rc.lua_source(function(emit) error("no luck") end), default = 1 },
} }
]])
    assert.equal(1, e:get("bad"))
    local errs = H.events(e, "source.error")
    assert.equal(1, #errs)
    assert.matches("no luck", errs[1].message)
  end)
end)

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
