-- SPDX-License-Identifier: MIT (see LICENSE)
-- Operations: a policy's print as a policy.log event, reactcfg-lua --log-level, and the
-- engine's metrics and status as the Lua module shows them (e:metrics(), e:status()).
local H = require "helpers"
local rc = require "reactcfg"

local POLICY = [[
local rc = require "reactcfg"
print("loading", 1, nil)
return rc.policy { components = {
  app = { source = rc.file "app.json",
          update = function(v) print("port is", v.port) return v end },
} }
]]

describe("print in a policy", function()
  after_each(H.cleanup)

  it("is a policy.log event naming the component, the file and the line", function()
    local e, dir = H.engine(POLICY, { ["app.json"] = '{"port": 1}' }, "policy-log")
    H.write(dir .. "/app.json.tmp", '{"port": 2}')
    os.rename(dir .. "/app.json.tmp", dir .. "/app.json")
    local ev = H.wait_for(e, "policy.log", "port is\t2")
    assert.truthy(ev, "no policy.log event")
    assert.equal("port is\t2", ev.message)
    assert.equal("app", ev.component)
    assert.equal(dir .. "/policy.lua", ev.file)
    assert.equal(5, ev.line)
  end)

  it("goes to stderr, prefixed [policy], when nobody listens to events", function()
    local dir = H.tmpdir("policy-log-stderr")
    H.write(dir .. "/policy.lua", POLICY)
    local out, code = H.sh(H.bin("reactcfg-lua") .. " --check " .. dir .. "/policy.lua")
    H.rmdir(dir)
    assert.equal(0, code)
    assert.matches("%[policy%] loading\t1\tnil\n", out)
  end)
end)

describe("reactcfg-lua --run --log-level", function()
  local lua_bin = H.bin("reactcfg-lua")
  local dir
  before_each(function() dir = H.tmpdir("log-level") end)
  after_each(function() H.rmdir(dir) end)

  -- Runs --run with `args`: waits for revision 1, saves a change (revision 2, a reload),
  -- then a broken file (a source error), and stops it. Returns its output.
  local function run(args, rev1, rev2)
    H.write(dir .. "/app.json", '{"port": 1}')
    H.write(dir .. "/policy.lua", POLICY)
    local out_file = dir .. "/out.txt"
    local script = ([[
%s --run %s/policy.lua %s > %s 2>&1 &
pid=$!
for i in $(seq 100); do grep -q '%s' %s && break; sleep 0.05; done
printf '{"port": 2}' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
for i in $(seq 100); do grep -q '%s' %s && break; sleep 0.05; done
printf '{"port": }' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
for i in $(seq 100); do grep -q 'source.error' %s && break; sleep 0.05; done
kill -TERM $pid
wait $pid
echo "status=$?"
]]):format(lua_bin, dir, args, out_file, rev1, out_file, dir, dir, dir, rev2, out_file, dir,
      dir, dir, out_file)
    local status = H.sh(script)
    assert.matches("status=0", status)
    local f = assert(io.open(out_file))
    local out = f:read("a")
    f:close()
    return out
  end

  local function people(args) return run(args, "rev 1", "rev 2") end

  it("prints what happens by default, the policy's print included", function()
    local out = people("")
    assert.matches("%* policy%.log [^\n]*/policy%.lua:2: loading\t1\tnil\n", out)
    assert.matches("%* policy%.log %[app%] [^\n]*/policy%.lua:5: port is\t2\n", out)
    assert.matches("%* engine%.started ", out)
    assert.matches("! source%.error %[app%]", out)
    assert.matches("%[rev 2%] 1 change", out)
    assert.not_matches("reload%.started", out)
  end)

  it("error prints failures and commits only", function()
    local out = people("--log-level error")
    assert.matches("! source%.error %[app%]", out)
    assert.matches("%[rev 2%] 1 change", out)
    assert.not_matches("policy%.log", out)
    assert.not_matches("engine%.started", out)
  end)

  it("debug adds each reload's start and end", function()
    local out = people("--log-level debug")
    assert.matches("%* reload%.started ", out)
    assert.matches("%* reload%.completed ", out)
    assert.matches("%* policy%.log ", out)
  end)

  it("filters JSON lines too (which get every event by default)", function()
    local all = run("--json", '"revision":1', '"revision":2')
    assert.matches('"event":"reload.started"', all)
    assert.matches('"event":"policy.log","time_ns":%d+,"component":"app","message":"port is\\t2"',
      all)
    local warn = run("--json --log-level warn", '"revision":1', '"revision":2')
    assert.matches('"event":"source.error"', warn)
    assert.matches('"revision":2', warn)
    assert.not_matches('"event":"reload.started"', warn)
    assert.not_matches('"event":"policy.log"', warn)
  end)

  it("rejects an unknown level, and goes with --run only", function()
    local out, code = H.sh(lua_bin .. " --run x.lua --log-level loud")
    assert.equal(2, code)
    assert.matches("unknown level 'loud' %(error, warn, info, debug%)", out)
    out, code = H.sh(lua_bin .. " --check x.lua --log-level info")
    assert.equal(2, code)
    assert.matches("go with %-%-run", out)
  end)
end)

describe("e:metrics() and e:status()", function()
  after_each(H.cleanup)

  it("count commits and show each component's state", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  app = rc.file "app.json",
  later = { source = rc.push(), startup = "default" },
  off = { source = rc.file "app.json", condition = function() return false end },
} }
]], { ["app.json"] = '{"port": 1}' }, "ops")
    local m = e:metrics()
    assert.matches("\nreactcfg_commits_total 1\n", m)
    assert.matches('\nreactcfg_source_up{component="app",kind="file"} 1\n', m)
    H.write(dir .. "/app.json.tmp", '{"port": 2}')
    os.rename(dir .. "/app.json.tmp", dir .. "/app.json")
    H.commits(e, 1)
    m = e:metrics()
    assert.matches("\nreactcfg_commits_total 2\n", m)
    assert.matches('\nreactcfg_reload_attempts_total{trigger="source"} 1\n', m)
    assert.matches('\nreactcfg_changes_total{kind="modified"} 1\n', m)
    local s = e:status()
    assert.equal(2, s.revision)
    assert.is_false(s.pinned)
    local by = {}
    for _, c in ipairs(s.components) do by[c.name] = c end
    assert.equal("ok", by.app.state)
    assert.equal("file", by.app.kind)
    assert.equal(dir .. "/app.json", by.app.target)
    assert.equal(rc.null, by.app.last_error)
    assert.equal("waiting", by.later.state)
    assert.equal("inactive", by.off.state)
  end)
end)

describe("a component's state follows its condition", function()
  after_each(H.cleanup)

  it("inactive while it is false, ok once it holds and the source answered", function()
    local e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  mode = rc.file "mode.json",
  dbg = { source = rc.file "dbg.json", condition = function(c) return c.mode.on end },
} }
]], { ["mode.json"] = '{"on": false}', ["dbg.json"] = '{"level": 2}' }, "ops-cond")
    local function state(name)
      for _, c in ipairs(e:status().components) do
        if c.name == name then return c.state end
      end
    end
    assert.equal("inactive", state("dbg"))
    H.write(dir .. "/mode.json.tmp", '{"on": true}')
    os.rename(dir .. "/mode.json.tmp", dir .. "/mode.json")
    assert.truthy(e:run_until(function() return e:get("dbg.level") == 2 end, "5s"))
    assert.equal("ok", state("dbg"))
    assert.matches('\nreactcfg_source_up{component="dbg",kind="file"} 1\n', e:metrics())
    H.write(dir .. "/mode.json.tmp", '{"on": false}')
    os.rename(dir .. "/mode.json.tmp", dir .. "/mode.json")
    assert.truthy(e:run_until(function() return e:get("dbg") == nil end, "5s"))
    assert.equal("inactive", state("dbg"))
    assert.not_matches('reactcfg_source_up{component="dbg"', e:metrics())
  end)
end)

describe("docs/OPERATIONS.md", function()
  after_each(H.cleanup)

  local function read(path)
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    return text
  end

  it("lists every metric family the engine exposes, and no other", function()
    local e = H.engine('local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { a = { source = rc.env "OPS_A" } } }\n')
    local exposed, documented = {}, {}
    for name in e:metrics():gmatch("# TYPE (reactcfg_[%w_]+) ") do exposed[#exposed + 1] = name end
    for name in read("docs/OPERATIONS.md"):gmatch("\n| `(reactcfg_[%w_]+)` |") do
      documented[#documented + 1] = name
    end
    table.sort(exposed)
    table.sort(documented)
    assert.is_true(#exposed >= 17)
    assert.same(exposed, documented)
  end)

  it("lists every component state", function()
    local doc = read("docs/OPERATIONS.md")
    local src = read("core/engine/status.c")
    local states = {}
    for s in src:gmatch('return "([%a%-]+)";') do states[#states + 1] = s end
    assert.equal(7, #states)
    for _, s in ipairs(states) do assert.matches("\n| `" .. s:gsub("%-", "%%-") .. "` |", doc) end
  end)
end)

describe("e:trace(n) and e:decisions(revision)", function()
  after_each(H.cleanup)

  it("keep the decisions behind the last n revisions, in the test bench's shape", function()
    local dir = H.tmpdir("decisions")
    H.write(dir .. "/app.json", '{"port": 1}')
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { app = rc.file "app.json" } }\n')
    local e = assert(rc.engine(dir .. "/policy.lua"))
    e:trace(1)
    assert(e:start())
    local d = e:decisions(1)
    assert.equal(1, d.revision)
    assert.same({ { path = "app", kind = "added" } }, d.changes)
    assert.equal("app", d.trace[1].component)
    assert.equal("decision", d.trace[1].kind)
    assert.equal('source delivered: {"port":1}', d.trace[1].message)
    assert.equal("commit: revision 1 with 1 change", d.trace[#d.trace].message)
    H.write(dir .. "/app.json.tmp", '{"port": 2}')
    os.rename(dir .. "/app.json.tmp", dir .. "/app.json")
    H.commits(e, 1)
    assert.is_nil(e:decisions(1)) -- one revision kept
    assert.equal(2, e:decisions(2).revision)
    assert.has_error(function() e:trace(-1) end)
    e:close()
    H.rmdir(dir)
  end)
end)
