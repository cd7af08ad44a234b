-- SPDX-License-Identifier: MIT (see LICENSE)
-- The policies of examples/policies/, one per pattern: each loads with --check, and each
-- does what its README says on a copy of its directory, through a real engine.
local H = require "spec.lua.helpers"
local rc = require "reactcfg"

local EXAMPLES = "examples/policies"
local NAMES = { "dependent-merge", "dev-prod", "throttled-live-settings", "feature-flags",
  "static-and-secrets", "custom-source", "force-reload", "redis-flags",
  "postgres-settings", "websocket-live", "kafka-config", "exec-command" }

local live = {}   -- { e, dir, env } started by `start`, closed by `cleanup`

--- Copies example `name` to a new directory, sets `env` (name -> value, false = unset;
--- or a function(dir) returning that) for the process, and starts an engine on the
--- copy's policy. Returns engine, dir. The variables are unset again by `cleanup`.
local function start(name, env)
  local dir = H.tmpdir("example-" .. name)
  local _, code = H.sh(("cp -R '%s/%s/.' '%s'"):format(EXAMPLES, name, dir))
  assert(code == 0, "cannot copy " .. name)
  local e = assert(rc.engine(dir .. "/policy.lua"))
  if type(env) == "function" then env = env(dir) end
  local l = { e = e, dir = dir, env = env or {} }
  live[#live + 1] = l
  for k, v in pairs(l.env) do e:setenv(k, v or nil) end   -- before start: process env
  assert(e:start())
  return e, dir
end

local function cleanup()
  for _, l in ipairs(live) do
    for k in pairs(l.env) do l.e:setenv(k, nil) end
    l.e:close()
    H.rmdir(l.dir)
  end
  live = {}
end

--- Rewrites a file of the copy: `edit` gets its text and returns the new text. In place
--- (truncate, write), or `atomic`ally (a new file renamed over it) for a reader that
--- does not wait for the writer to finish, such as a polled command.
local function edit(path, fn, atomic)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local new = fn(text)
  assert(new ~= text, "the edit changed nothing in " .. path)
  if not atomic then return H.write(path, new) end
  H.write(path .. ".new", new)
  assert(os.rename(path .. ".new", path))
end

--- Replaces exactly one occurrence of `from` (plain text) by `to` in file `path`.
local function replace(path, from, to, atomic)
  edit(path, function(text)
    local i, j = text:find(from, 1, true)
    assert(i, ("%q not found in %s"):format(from, path))
    assert(not text:find(from, j + 1, true), ("%q found twice in %s"):format(from, path))
    return text:sub(1, i - 1) .. to .. text:sub(j + 1)
  end, atomic)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

describe("examples/policies", function()
  for _, name in ipairs(NAMES) do
    it(name .. " has a policy, a README and passes --check", function()
      local dir = EXAMPLES .. "/" .. name
      local readme = io.open(dir .. "/README.md")
      assert.truthy(readme, dir .. "/README.md is missing")
      readme:close()
      local out, code = H.sh(H.bin("reactcfg-lua") .. " --check " .. dir .. "/policy.lua")
      assert.equal(0, code, out)
      assert.matches("policy.lua: ok", out)
    end)
  end

  it("has no example that is not listed here", function()
    local out = H.sh("LC_ALL=C ls " .. EXAMPLES)
    local found = {}
    for n in out:gmatch("[^\n]+") do found[#found + 1] = n end
    local listed = { table.unpack(NAMES) }
    table.sort(listed)
    assert.same(listed, found)
  end)
end)

describe("example dependent-merge", function()
  after_each(cleanup)

  it("merges derived.toml over base.toml, routes by name, again after each save", function()
    local e, dir = start("dependent-merge")
    assert.equal(1, #e:commits())
    assert.same({ host = "0.0.0.0", port = 9090, workers = 4 }, e:get("app.server"))
    assert.same({ { name = "api", timeout_ms = 200 }, { name = "web", timeout_ms = 2000 },
                  { name = "admin", timeout_ms = 1000 } }, e:get("app.routes"))
    -- A base change reaches the derived value in the same commit.
    replace(dir .. "/base.toml", 'host = "0.0.0.0"', 'host = "127.0.0.1"')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified app.server.host", "modified base.server.host" },
      H.change_strings(commits[1], true))
    assert.equal("127.0.0.1", e:get("app.server.host"))
    assert.equal(9090, e:get("app.server.port"))       -- the override still wins
    -- A route of the base that derived.toml also sets keeps the derived timeout; one
    -- it does not set follows the base.
    edit(dir .. "/base.toml", function(t)
      return (t:gsub("timeout_ms = 500", "timeout_ms = 700")
               :gsub("timeout_ms = 2000", "timeout_ms = 3000"))
    end)
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified app.routes[1].timeout_ms", "modified base.routes[0].timeout_ms",
                  "modified base.routes[1].timeout_ms" }, H.change_strings(commits[1], true))
    assert.equal(200, e:get("app.routes[0].timeout_ms"))
    assert.equal(3000, e:get("app.routes[1].timeout_ms"))
    -- A derived change touches the derived value only.
    replace(dir .. "/derived.toml", "port = 9090", "port = 9191")
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified app.server.port" }, H.change_strings(commits[1], true))
  end)
end)

describe("example dev-prod", function()
  after_each(cleanup)

  it("watches dev.yaml only while APP_MODE is development", function()
    local e, dir = start("dev-prod", { APP_MODE = false })
    assert.equal("production", e:get("mode"))
    assert.is_nil(e:get("dev"))
    assert.equal("warn", e:get("settings.log_level"))
    e:commits()
    e:events()
    -- Inactive: dev.yaml is not even watched.
    replace(dir .. "/dev.yaml", "log_level: debug", "log_level: trace")
    e:run("300ms")
    assert.equal(0, #e:commits())
    -- The switch is one commit: dev appears, prod goes, settings follow.
    e:setenv("APP_MODE", "development")
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    local changes = H.change_strings(commits[1], true)
    assert.same({ "added dev", "modified mode", "modified settings.db.url",
                  "modified settings.hot_reload_templates", "modified settings.log_level",
                  "removed prod" }, changes)
    assert.equal("trace", e:get("dev.log_level"))      -- read when it became active
    assert.equal("trace", e:get("settings.log_level"))
    local states = H.events(e, "component.state")
    assert.equal(2, #states)
    -- Active now: a save of dev.yaml commits; prod.yaml is the one not watched.
    replace(dir .. "/dev.yaml", "log_level: trace", "log_level: debug")
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified dev.log_level", "modified settings.log_level" },
      H.change_strings(commits[1], true))
    replace(dir .. "/prod.yaml", "log_level: warn", "log_level: error")
    e:run("300ms")
    assert.equal(0, #e:commits())
    -- Back to production: prod is read again, with the edit made while it was off.
    e:setenv("APP_MODE", nil)
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.is_nil(e:get("dev"))
    assert.equal("error", e:get("prod.log_level"))
    assert.equal("error", e:get("settings.log_level"))
  end)
end)

describe("example throttled-live-settings", function()
  after_each(cleanup)

  local function save(dir, n)
    H.write(dir .. "/live.json", ('{"banner": "v%d", "rate_limit": {"rps": 100, '
      .. '"burst": 20}, "cache_ttl_s": 60}'):format(n))
  end

  it("debounces a quick burst of saves into one update", function()
    local e, dir = start("throttled-live-settings")
    e:commits()
    for i = 1, 5 do
      save(dir, i)
      e:run("20ms")
    end
    local commits = H.commits(e, 1, "400ms")
    assert.equal(1, #commits)
    assert.same({ { path = "live.banner", kind = "modified", old = "Welcome!", new = "v5" } },
      commits[1].changes)
  end)

  it("applies 3 separate saves at once, holds the next ones, applies the last later",
    function()
    local e, dir = start("throttled-live-settings")
    assert.equal(1, #e:commits())           -- the first read is not throttled
    -- Three saves, each waited for: the bucket's 3 tokens, applied at once.
    for i = 1, 3 do
      save(dir, i)
      local got = {}
      assert.is_true(e:run_until(function()
        for _, c in ipairs(e:commits()) do got[#got + 1] = c end
        return #got > 0
      end, "2s"))
      assert.equal(1, #got)
      assert.equal("v" .. i, got[1].changes[1].new)
    end
    -- Two more, each past the debounce: no token left, so they are held (v5 replacing
    -- v4) until the bucket earns one back (one a second).
    save(dir, 4)
    e:run("150ms")
    save(dir, 5)
    e:run("150ms")
    assert.equal(0, #e:commits())
    assert.equal("v3", e:get("live.banner"))
    local later = H.commits(e, 1)
    assert.equal(1, #later)
    assert.same({ { path = "live.banner", kind = "modified", old = "v3", new = "v5" } },
      later[1].changes)
  end)
end)

describe("example feature-flags", function()
  after_each(cleanup)

  local ORIGINAL
  local function save(dir, fn)
    H.write(dir .. "/flags.json", fn(ORIGINAL))
  end

  it("normalises flags, refuses bad ones with a reason, drops drafts and notes",
    function()
    local e, dir = start("feature-flags")
    ORIGINAL = read(dir .. "/flags.json")
    assert.same({ new_ui = true, beta_api = false, maintenance = false },
      e:get("features.flags"))
    assert.equal(25, e:get("features.rollout.new_ui"))
    e:commits()
    e:events()

    -- A flag that is neither on nor off: refused, the old flags stay.
    save(dir, function(t) return (t:gsub('"beta_api": "off"', '"beta_api": "maybe"')) end)
    local ev = H.wait_event(e, "change.rejected")
    assert.equal("features", ev.component)
    assert.matches("flag 'beta_api' must be on or off, got \"maybe\"", ev.message, 1, true)
    -- A rollout beyond 100 %.
    save(dir, function(t) return (t:gsub('"25%%"', '"150%%"')) end)
    ev = H.wait_event(e, "change.rejected")
    assert.matches("rollout of 'new_ui' must be between 0% and 100%, got 150", ev.message,
      1, true)
    -- A draft: filtered.
    save(dir, function(t)
      return (t:gsub('"maintenance": false', '"maintenance": true')
               :gsub('"draft": false', '"draft": true'))
    end)
    assert.truthy(H.wait_event(e, "change.filtered"))
    -- Documentation only (owners outside `only`, the note under `ignore`): filtered.
    save(dir, function(t)
      return (t:gsub('"web%-team"', '"ui-team"'):gsub("25%% a day", "10%% a day"))
    end)
    assert.truthy(H.wait_event(e, "change.filtered"))
    e:run("200ms")
    assert.equal(0, #e:commits())
    assert.same({ new_ui = true, beta_api = false, maintenance = false },
      e:get("features.flags"))
    assert.equal("web-team", e:get("features.owners.new_ui"))

    -- A good change, spelt "ON": applied, normalised to true, in one commit.
    save(dir, function(t) return (t:gsub('"maintenance": false', '"maintenance": "ON"')) end)
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ { path = "features.flags.maintenance", kind = "modified", old = false,
                    new = true } }, commits[1].changes)
  end)
end)

describe("example static-and-secrets", function()
  after_each(cleanup)

  it("redacts secrets in reads and change lists, and reveals them on request", function()
    local e, dir = start("static-and-secrets")
    assert.equal("<redacted>", e:get("api_token"))
    assert.equal("tok_live_8f3a61c2", e:get("api_token", { reveal = true }))
    assert.same({ url = "postgres://db.internal/app", user = "app", password = "<redacted>",
                  pool = { max = 20, idle_timeout_s = 30 } }, e:get("db"))
    assert.equal("hunter2", e:get("db.password", { reveal = true }))
    e:commits()
    replace(dir .. "/db.json", '"hunter2"', '"swordfish"')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ { path = "db.password", kind = "modified", old = "<redacted>",
                    new = "<redacted>", secret = true } }, commits[1].changes)
    assert.equal("swordfish", e:get("db.password", { reveal = true }))
  end)

  it("shows no secret in reactcfg-lua --run output", function()
    local out = H.sh("timeout -s INT 1 " .. H.bin("reactcfg-lua") .. " --run --json "
      .. EXAMPLES .. "/static-and-secrets/policy.lua")
    assert.matches('"password":"<redacted>"', out, 1, true)
    assert.matches('"path":"api_token"', out, 1, true)
    assert.is_nil(out:find("hunter2", 1, true))
    assert.is_nil(out:find("tok_live", 1, true))
  end)

  it("does not apply static changes and says a restart is required", function()
    local e, dir = start("static-and-secrets")
    e:commits()
    e:events()
    -- The whole `listen` component is static.
    replace(dir .. "/listen.json", "8443", "9443")
    local ev = H.wait_event(e, "restart.required")
    assert.matches("listen.port", ev.message, 1, true)
    e:run("200ms")
    assert.equal(0, #e:commits())
    assert.equal(8443, e:get("listen.port"))
    -- In `db` only the url is: the pool change of the same save applies.
    edit(dir .. "/db.json", function(t)
      return (t:gsub("db%.internal", "db2.internal"):gsub('"max": 20', '"max": 40'))
    end)
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified db.pool.max" }, H.change_strings(commits[1], true))
    assert.equal("postgres://db.internal/app", e:get("db.url"))
    ev = H.events(e, "restart.required")
    assert.equal(1, #ev)
    assert.matches("db.url", ev[1].message, 1, true)
  end)

  it("falls back to the default or to the handler's value when a file breaks", function()
    local e, dir = start("static-and-secrets")
    e:commits()
    H.write(dir .. "/tuning.json", '{"cache_mb": ')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified tuning.cache_mb" }, H.change_strings(commits[1], true))
    assert.same({ cache_mb = 64, log_level = "info" }, e:get("tuning"))
    H.write(dir .. "/limits.json", '{"rps": 500,\n "max_body_kb": }')
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ rps = 50, max_body_kb = 64, degraded = true }, e:get("limits"))
    -- Fixed files are applied as usual.
    H.write(dir .. "/limits.json", '{"rps": 600, "max_body_kb": 1024}')
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ rps = 600, max_body_kb = 1024 }, e:get("limits"))
  end)
end)

describe("example custom-source", function()
  after_each(cleanup)

  it("polls the command, parses its TOML, and commits only real changes", function()
    local e, dir = start("custom-source",
      function(dir) return { STATUS_FILE = dir .. "/status.toml" } end)
    -- The first run finishes after start: revision 1 is empty, revision 2 has it.
    local commits = H.commits(e, 2)
    assert.equal(2, #commits)
    assert.same({}, commits[1].changes)
    assert.same({ "added status" }, H.change_strings(commits[2], true))
    assert.same({ maintenance = false, message = "All systems normal",
                  capacity = { max_users = 5000 } }, e:get("status"))
    -- Polls that print the same thing commit nothing (a poll every 500 ms).
    e:run("700ms")
    assert.equal(0, #e:commits())
    replace(dir .. "/status.toml", "maintenance = false", "maintenance = true", true)
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified status.maintenance" }, H.change_strings(commits[1], true))
    -- Output that does not parse: one source error however many polls see it, and the
    -- last good value stays.
    e:events()
    replace(dir .. "/status.toml", "max_users = 5000", "max_users = ", true)
    assert.truthy(H.wait_event(e, "source.error"))
    e:run("1200ms")
    assert.equal(0, #H.events(e, "source.error"))
    assert.equal(0, #e:commits())
    assert.equal(5000, e:get("status.capacity.max_users"))
    replace(dir .. "/status.toml", "max_users = ", "max_users = 6000", true)
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified status.capacity.max_users" }, H.change_strings(commits[1], true))
    assert.equal(1, #H.events(e, "source.recovered"))
  end)

  it("reports a command that fails as a source error", function()
    local e = start("custom-source",
      function(dir) return { STATUS_FILE = dir .. "/missing.toml" } end)
    local ev = H.wait_event(e, "source.error")
    assert.equal("status", ev.component)
    assert.matches("sh exited with 1: cat: .*missing%.toml: No such file", ev.message)
    assert.is_nil(e:get("status"))
  end)

  it("runs the stop function when the source goes away", function()
    local e, dir = start("custom-source",
      function(dir) return { STATUS_FILE = dir .. "/status.toml" } end)
    assert.equal(2, #H.commits(e, 2))
    e:events()
    H.write(dir .. "/policy.lua",
      'local rc = require "reactcfg"\nreturn rc.policy { components = {} }\n')
    local ev = H.wait_event(e, "policy.reloaded")
    assert.matches("0 components %(0 sources kept, 0 started, 1 stopped%)", ev.message)
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "removed status" }, H.change_strings(commits[1], true))
    assert.equal(0, #H.events(e, "policy.error"))   -- the stop function did not fail
  end)
end)

describe("example force-reload", function()
  after_each(cleanup)

  it("notifies an unchanged save of a force component, not of an ordinary one", function()
    local e, dir = start("force-reload")
    e:commits()
    -- The same bytes again: the ordinary component commits nothing...
    H.write(dir .. "/settings.json", read(dir .. "/settings.json"))
    e:run("300ms")
    assert.equal(0, #e:commits())
    -- ...the force component commits one "touched" change.
    H.write(dir .. "/routes.json", read(dir .. "/routes.json"))
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.equal(1, #commits[1].changes)
    assert.equal("touched", commits[1].changes[1].kind)
    assert.equal("routes", commits[1].changes[1].path)
    -- `touch` opens the file for writing: that is a save too.
    local _, code = H.sh("touch '" .. dir .. "/routes.json'")
    assert.equal(0, code)
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.equal("touched", commits[1].changes[1].kind)
    -- A real change is reported as usual.
    replace(dir .. "/routes.json", "/healthz", "/ready")
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified routes.health_check" }, H.change_strings(commits[1], true))
  end)
end)

describe("example redis-flags", function()
  local r
  setup(function() r = H.redis_server() end)
  teardown(function() if r then r.stop() end end)
  after_each(cleanup)

  it("follows a hash, a prefix and an expiring key in a real redis-server", function()
    r.cmd("HSET", "app:flags", "new_ui", "on", "beta_api", "off")
    r.cmd("SET", "app:cfg:db", '{"host": "db1", "pool": 8}')
    r.cmd("SET", "app:promo", '{"banner": "Sale"}', "EX", "3600")
    -- A copy that talks to the test's server instead of port 6379.
    local dir = H.tmpdir("example-redis-flags")
    assert(select(2, H.sh(("cp -R '%s/redis-flags/.' '%s'"):format(EXAMPLES, dir))) == 0)
    replace(dir .. "/policy.lua", "127.0.0.1:6379", "127.0.0.1:" .. r.port)
    local e = assert(rc.engine(dir .. "/policy.lua"))
    live[#live + 1] = { e = e, dir = dir, env = {} }
    assert(e:start())
    -- startup = "cached": the first start has no cache yet and does not wait for Redis.
    assert.truthy(e:run_until(function() return e:get("flags.new_ui") == true end))
    assert.truthy(e:run_until(function() return e:get("settings.db.pool") == 8 end))
    -- promo (startup = "default") answers on its own connection, maybe a turn later.
    assert.truthy(e:run_until(function() return e:get("promo.banner") ~= nil end))
    assert.same({ new_ui = true, beta_api = false }, e:get("flags"))
    assert.same({ db = { host = "db1", pool = 8 } }, e:get("settings"))
    assert.equal("Sale", e:get("promo.banner"))
    assert.truthy(e:get("promo.ends_in_s") > 3500)
    e:commits()
    r.cmd("HSET", "app:flags", "beta_api", "yes")
    assert.same({ "modified flags.beta_api" }, H.change_strings(H.commits(e, 1)[1]))
    r.cmd("SET", "app:cfg:cache", '{"ttl": 60}')
    assert.same({ "added settings.cache" }, H.change_strings(H.commits(e, 1)[1]))
    r.cmd("SET", "app:promo", '{"banner": "Last day"}', "PX", "300")
    assert.truthy(e:run_until(function() return e:get("promo.banner") == "Last day" end))
    assert.truthy(e:run_until(function() return e:get("promo") == nil end))
    -- The last good values were kept in .cache: a start while Redis is down uses them.
    r.kill()
    local e2 = assert(rc.engine(dir .. "/policy.lua"))
    live[#live + 1] = { e = e2, dir = H.tmpdir("example-redis-flags"), env = {} }
    assert(e2:start())
    assert.same({ new_ui = true, beta_api = true }, e2:get("flags"))
    assert.same({ cache = { ttl = 60 }, db = { host = "db1", pool = 8 } }, e2:get("settings"))
    r.start()
  end)
end)

describe("example postgres-settings", function()
  local P = require "spec.lua.postgres"
  local srv
  setup(function()
    srv = P.new()
    srv:sql(read(EXAMPLES .. "/postgres-settings/schema.sql"))
  end)
  teardown(function() if srv then srv:close() end end)
  after_each(cleanup)

  it("reads settings and flags, follows NOTIFY, refuses a bad row, survives a restart",
    function()
    local e = start("postgres-settings", { APP_PG = srv:conninfo() })
    assert.truthy(e:run_until(function() return e:get("flags") ~= nil end))
    assert.same({ invoice = { max_lines = 500, currency = "EUR" },
                  retry = { attempts = 3, delay = "30s" } }, e:get("billing"))
    assert.same({ on = true, rollout = 25.0, expires_at = "2030-01-01T00:00:00Z" },
      e:get('flags["new-checkout"]'))
    assert.same({ on = false, rollout = 0.0 }, e:get('flags["dark-mode"]'))
    e:run("100ms")
    e:commits()
    srv:sql([[UPDATE settings SET value = '{"max_lines": 900, "currency": "EUR"}'
      WHERE key = 'invoice']])
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified billing.invoice.max_lines" }, H.change_strings(commits[1]))
    srv:sql("UPDATE feature_flags SET enabled = true WHERE name = 'dark-mode'")
    commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "modified flags.dark-mode.on" }, H.change_strings(commits[1]))
    -- validate refuses it: the settings in force stay, and the event says why.
    srv:sql([[UPDATE settings SET value = '{"max_lines": "lots"}' WHERE key = 'invoice']])
    local ev = H.wait_event(e, "change.rejected")
    assert.truthy(ev)
    assert.matches("max_lines must be a positive integer", ev.message)
    assert.equal(900, e:get("billing.invoice.max_lines"))
    -- The server goes away: values stay, an error names the database, not the secret.
    srv:stop()
    local err = H.wait_event(e, "source.error")
    assert.truthy(err)
    assert.matches("^postgres://postgres@", err.file)
    assert.equal(900, e:get("billing.invoice.max_lines"))
    srv:start()
    srv:sql([[UPDATE settings SET value = '{"max_lines": 700, "currency": "EUR"}'
      WHERE key = 'invoice']])
    assert.truthy(e:run_until(function()
      return e:get("billing.invoice.max_lines") == 700 end, "10s"))
  end)
end)

describe("example websocket-live", function()
  local w
  setup(function() w = H.ws_server() end)
  teardown(function() if w then w.stop() end end)
  after_each(cleanup)

  it("follows settings pushed by a real WebSocket server, refusing a bad document",
    function()
    w.set('{"rate_limit": 200, "maintenance": false}')
    -- A copy that talks to the test's server instead of port 8765.
    local dir = H.tmpdir("example-websocket-live")
    assert(select(2, H.sh(("cp -R '%s/websocket-live/.' '%s'"):format(EXAMPLES, dir))) == 0)
    replace(dir .. "/policy.lua", "127.0.0.1:8765", "127.0.0.1:" .. w.port)
    local e = assert(rc.engine(dir .. "/policy.lua"))
    live[#live + 1] = { e = e, dir = dir, env = {} }
    assert(e:start())
    -- startup = "cached": the first start has no cache yet and does not wait.
    assert.truthy(e:run_until(function() return e:get("live.rate_limit") == 200 end))
    e:commits()
    w.set('{"rate_limit": 300, "maintenance": false}')
    assert.same({ "modified live.rate_limit" }, H.change_strings(H.commits(e, 1)[1]))
    w.set('{"rate_limit": 300, "maintenance": true, "banner": "Back soon"}')
    assert.same({ "added live.banner", "modified live.maintenance" },
      H.change_strings(H.commits(e, 1)[1], true))
    -- A document that fails validate: refused, nothing changes.
    w.set('{"rate_limit": -1, "maintenance": true}')
    local rejected
    e:run_until(function()
      rejected = rejected or H.events(e, "change.rejected")[1]
      return rejected ~= nil
    end)
    assert.truthy(rejected)
    assert.matches("rate_limit must be a positive integer", rejected.message)
    assert.equal(300, e:get("live.rate_limit"))
    -- The service closes the connection: the settings stay, the source comes back.
    w.set('{"rate_limit": 400, "maintenance": false}')
    assert.truthy(e:run_until(function() return e:get("live.rate_limit") == 400 end))
    w.post("close", '{"code": 1001}')
    assert.truthy(H.wait_event(e, "source.error"))
    assert.truthy(H.wait_event(e, "source.recovered"))
    assert.equal(400, e:get("live.rate_limit"))
    -- The last good settings were kept in .cache: a start while the server is down uses
    -- them, and catches up once it is back.
    e:run("100ms")
    w.kill()
    local e2 = assert(rc.engine(dir .. "/policy.lua"))
    live[#live + 1] = { e = e2, dir = H.tmpdir("example-websocket-live"), env = {} }
    assert(e2:start())
    assert.same({ rate_limit = 400, maintenance = false }, e2:get("live"))
    w.start()
    w.set('{"rate_limit": 500, "maintenance": false}')
    assert.truthy(e2:run_until(function() return e2:get("live.rate_limit") == 500 end,
      "10s"))
  end)
end)

describe("example kafka-config", function()
  local K = require "spec.lua.kafka"
  local k
  setup(function() k = K.cluster() end)
  teardown(function() if k then k.stop() end end)
  after_each(cleanup)

  it("follows one key and a whole topic in librdkafka's mock cluster", function()
    k.topic("app-config", 2)
    k.topic("app-flags", 3)
    k.produce("app-config", 0, "billing", '{"currency": "EUR", "retries": 3}')
    k.produce("app-config", 1, "other", '{"x": 1}')
    k.produce("app-flags", 0, "new_ui", "true")
    k.produce("app-flags", 2, "beta_api", "false")
    -- A copy that talks to the mock cluster instead of 127.0.0.1:9092.
    local dir = H.tmpdir("example-kafka-config")
    assert(select(2, H.sh(("cp -R '%s/kafka-config/.' '%s'"):format(EXAMPLES, dir))) == 0)
    replace(dir .. "/policy.lua", "127.0.0.1:9092", k.bootstraps)
    local e = assert(rc.engine(dir .. "/policy.lua"))
    live[#live + 1] = { e = e, dir = dir, env = {} }
    assert(e:start())
    -- startup = "cached": no cache yet, so the start does not wait for the brokers.
    assert.truthy(e:run_until(function() return e:get("billing.retries") == 3 end))
    assert.truthy(e:run_until(function() return e:get("flags.new_ui") == true end))
    assert.same({ currency = "EUR", retries = 3 }, e:get("billing"))
    assert.same({ new_ui = true, beta_api = false }, e:get("flags"))
    e:commits()
    k.produce("app-config", 0, "billing", '{"currency": "EUR", "retries": 5}')
    assert.same({ "modified billing.retries" }, H.change_strings(H.commits(e, 1)[1]))
    k.produce("app-flags", 1, "dark_mode", "true")
    assert.same({ "added flags.dark_mode" }, H.change_strings(H.commits(e, 1)[1]))
    k.produce("app-flags", 0, "new_ui", nil)         -- a tombstone
    assert.same({ "removed flags.new_ui" }, H.change_strings(H.commits(e, 1)[1]))
    -- The brokers go away: the values stay, and a restart starts from .cache.
    e:run("100ms")
    k.down(-1)
    local e2 = assert(rc.engine(dir .. "/policy.lua"))
    live[#live + 1] = { e = e2, dir = H.tmpdir("example-kafka-config"), env = {} }
    assert(e2:start())
    assert.same({ dark_mode = true, beta_api = false }, e2:get("flags"))
    assert.equal(5, e2:get("billing.retries"))
    k.up(-1)
    -- A record that validate refuses: the previous value stays. The restarted engine
    -- catches up once librdkafka has reconnected (on its own backoff: a bounded wait).
    k.produce("app-config", 0, "billing", '{"currency": "EUR", "retries": -1}')
    k.produce("app-flags", 1, "dark_mode", "false")
    local ev
    assert.truthy(e2:run_until(function()
      ev = ev or H.events(e2, "change.rejected")[1]
      return ev ~= nil and e2:get("flags.dark_mode") == false
    end, "30s"))
    assert.matches("retries must be a number >= 0", ev.message, 1, true)
    assert.equal(5, e2:get("billing.retries"))
  end)
end)

describe("example exec-command", function()
  after_each(cleanup)

  it("runs the command, follows its output, and reports its failure", function()
    local e, dir = start("exec-command")
    -- startup = "cached": no cache yet, so the start does not wait for the first run.
    assert.truthy(e:run_until(function() return e:get("limits.burst") == 20 end))
    assert.same({ rps = 100, burst = 20 }, e:get("limits"))
    e:commits()
    H.write(dir .. "/limits.json", '{"rps": 200, "burst": 20}')
    local commits = H.commits(e, 1)
    assert.same({ "modified limits.rps" }, H.change_strings(commits[1]))
    H.write(dir .. "/offline", "")
    local ev = H.wait_event(e, "source.error")
    assert.matches("fetch-limits.sh exited with status 2: fetch-limits: connecting to the "
      .. "limits service | fetch-limits: connection refused", ev.message, 1, true)
    assert.equal(200, e:get("limits.rps"))
    os.remove(dir .. "/offline")
    assert.truthy(H.wait_event(e, "source.recovered"))
  end)
end)
