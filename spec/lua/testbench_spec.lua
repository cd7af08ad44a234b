-- SPDX-License-Identifier: MIT (see LICENSE)
-- The policy test bench: pushes on a virtual clock, explain, the scenario
-- runner, record and replay, and the bench at the REPL.
local H = require "helpers"

local POLICY = [[
local rc = require "reactcfg"
return rc.policy { components = {
  mode  = { source = rc.env "RC_BENCH_MODE", default = "production" },
  flags = { source = rc.file "flags.json", throttle = { every = "5s", burst = 1 },
            validate = function(v) return v.rps > 0, "rps must be positive" end },
  dev   = { source = rc.file "dev.json", default = {},
            condition = function(c) return c.mode == "development" end },
} }
]]

local function session() return H.bench_session(POLICY) end

describe("the test bench", function()
  local s, dir
  after_each(function()
    if s then s:close() end
    if dir then H.rmdir(dir) end
    s, dir = nil, nil
  end)

  it("applies throttled pushes only when virtual time reaches the next token", function()
    s, dir = session()
    s.e:push("flags", { rps = 1 })
    s.e:push("flags", { rps = 2 })
    s.e:push("flags", { rps = 3 })
    assert.equal(1, s.e:get("flags.rps"))
    s.e:advance("4999ms")
    assert.equal(1, s.e:get("flags.rps"))
    s.e:advance("1ms")
    assert.equal(3, s.e:get("flags.rps"))
    assert.equal(3, s.e:revision())
    assert.equal(5000, s.e:now())
  end)

  it("explains a throttled change with the times of each decision", function()
    s, dir = session()
    s.e:push("flags", { rps = 1 })
    s.e:push("flags", { rps = 2 })
    s.e:advance("5s")
    local text = s:explain()
    assert.matches("^revision 3 at %+5000 ms %(1 change%)", text)
    assert.matches("%+0ms%s+flags%s+source delivered: {\"rps\":2}", text)
    assert.matches("%+0ms%s+flags%s+throttle: no token, held until %+5000 ms", text)
    assert.matches("%+5000ms%s+flags%s+validate: accepted", text)
    assert.matches("modified flags.rps: 1 %-> 2", text)
  end)

  it("explains a conditional change: the condition's result and the source started",
    function()
    s, dir = session()
    s.e:push("mode", "development")
    local text = s:explain()
    assert.matches("mode%s+source delivered: \"development\"", text)
    assert.matches("dev%s+condition: true %-> activate", text)
    assert.matches("dev%s+component.state: component 'dev' is active", text)
    assert.matches("modified mode: \"production\" %-> \"development\"", text)
  end)

  it("explains a rejected change, which commits nothing", function()
    s, dir = session()
    s.e:push("flags", { rps = 1 })
    s.e:advance("5s")
    s.e:push("flags", { rps = -1 })
    local text = s:explain()
    assert.matches("^since revision 2 %(no commit yet%)", text)
    assert.matches("validate: rejected %(rps must be positive%)", text)
    assert.matches("change.rejected: component 'flags': new value rejected", text)
    assert.matches("diff: nothing changed; no commit", text)
  end)

  it("keeps the session's revisions for reads and diffs", function()
    s, dir = session()
    s.e:push("flags", { rps = 1 })
    s.e:advance("5s")
    s.e:push("flags", { rps = 7 })
    assert.equal(1, s.e:get("flags.rps", { revision = 2 }))
    local d = s.e:diff(2, 3)
    assert.equal(1, #d)
    assert.equal("flags.rps", d[1].path)
    assert.equal(7, d[1].new)
    assert.equal(3, #s.e:history())
  end)

  it("parses pushed text like the source would, errors included", function()
    s, dir = session()
    assert.is_true(s.e:push_text("flags", "rps: 4", "yaml"))
    assert.equal(4, s.e:get("flags.rps"))
    local ok, err = s.e:push_text("flags", "rps: [", "yaml")
    assert.is_nil(ok)
    assert.matches("^yaml:1:", err)
    assert.equal(1, #H.events(s.e, "source.error"))
  end)
end)

describe("reactcfg-lua test", function()
  local dir
  before_each(function()
    dir = H.tmpdir("scenarios")
    H.write(dir .. "/policy.lua", POLICY)
  end)
  after_each(function() H.rmdir(dir) end)

  it("passes scenario blocks that run to the end and exits 0", function()
    H.write(dir .. "/ok_test.lua", [[
scenario("throttled flags apply the last value at the next token", function()
  policy("policy.lua")
  push("flags", { rps = 1 })
  push("flags", { rps = 2 })
  push("flags", { rps = 3 })
  expect("flags.rps", 1)
  advance("5s")
  expect("flags.rps", 3)
  expect_commits(2)
end)
scenario("a rejected value keeps the old one", function()
  policy("policy.lua")
  push("flags", { rps = 5 })
  advance("5s")
  push("flags", { rps = -1 })
  expect("flags.rps", 5)
  expect_event("change.rejected", "rps must be positive")
  assert(explain():find("validate: rejected"))
end)
]])
    local out, code = H.sh(H.bin("reactcfg-lua") .. " test " .. dir .. "/ok_test.lua")
    assert.equal(0, code, out)
    assert.matches("ok%s+.-ok_test.lua: throttled flags apply", out)
    assert.matches("\n2 passed, 0 failed\n$", out)
  end)

  it("passes the example scenario file of docs/REPL.md", function()
    local out, code = H.sh(H.bin("reactcfg-lua") .. " test examples/bench/settings_test.lua")
    assert.equal(0, code, out)
    assert.matches("\n3 passed, 0 failed\n$", out)
  end)

  it("reports a failing expectation with its line and exits 1", function()
    H.write(dir .. "/bad_test.lua", [[
policy("policy.lua")
push("flags", { rps = 5 })
expect("flags.rps", 6)
]])
    H.write(dir .. "/plain_test.lua", [[
policy("policy.lua")
push("mode", "development")
assert(get("mode") == "development")
]])
    local out, code = H.sh(H.bin("reactcfg-lua") .. " test " .. dir .. "/bad_test.lua "
      .. dir .. "/plain_test.lua")
    assert.equal(1, code, out)
    assert.matches("FAILED%s+.-bad_test.lua\n%s+.-bad_test.lua:3: expected flags.rps = 6, got 5",
      out)
    assert.matches("ok%s+.-plain_test.lua", out)
    assert.matches("\n1 passed, 1 failed\n$", out)
  end)
end)

describe("test bench errors", function()
  local dir
  before_each(function()
    dir = H.tmpdir("bench-errors")
    H.write(dir .. "/policy.lua", POLICY)
  end)
  after_each(function() H.rmdir(dir) end)

  it("point at the line of the scenario that made the bad call", function()
    -- Before: lua/reactcfg/sim.lua:161: no component named 'nosuch'
    H.write(dir .. "/calls_test.lua", [[
scenario("an unknown component", function()
  policy("policy.lua")
  push("nosuch", 1)
end)
scenario("a bad duration", function()
  policy("policy.lua")

  advance("5 parsecs")
end)
scenario("an unknown format", function()
  policy("policy.lua")
  push_text("flags", "{}", "xml")
end)
]])
    local out, code = H.sh(H.bin("reactcfg-lua") .. " test " .. dir .. "/calls_test.lua")
    assert.equal(1, code, out)
    assert.not_matches("sim%.lua", out)
    assert.matches("calls_test%.lua:3: no component named 'nosuch'", out)
    assert.matches("calls_test%.lua:8: bad argument #1 to 'advance' %(invalid duration", out)
    assert.matches("calls_test%.lua:12: push_text: unknown format 'xml'", out)
  end)

  it("point at the command line or the prompt's line in the REPL", function()
    local out, code = H.sh(H.bin("reactcfg-lua") .. " -e 'policy(\"" .. dir
      .. "/policy.lua\", { sources = false })' -e 'push(\"nosuch\", 1)'")
    assert.equal(1, code, out)
    assert.matches("reactcfg%-lua: %(command line%):1: no component named 'nosuch'", out)
  end)

  it("keep the session already loaded when policy() fails", function()
    -- Before: the loaded session was closed first, so every later call said "no policy
    -- loaded".
    local script = dir .. "/s.lua"
    H.write(script, ([[
policy(%q, { sources = false })
push("flags", { rps = 7 })
local ok, err = pcall(policy, %q)
assert(not ok)
print(err)
print(get("flags.rps"))
]]):format(dir .. "/policy.lua", dir .. "/missing.lua"))
    local out, code = H.sh(H.bin("reactcfg-lua") .. " " .. script)
    assert.equal(0, code, out)
    assert.matches("s%.lua:3: [^\n]*missing%.lua: cannot open policy", out)
    assert.matches("\n7\n$", out)
  end)
end)

describe("record and replay", function()
  local dir
  before_each(function() dir = H.tmpdir("record") end)
  after_each(function() H.rmdir(dir) end)

  -- "kind path" of every change, revision by revision, from `--run --json` lines.
  local function run_changes(out)
    local revs = {}
    for line in out:gmatch("[^\n]+") do
      local v = require("reactcfg").parse(line)
      if v and v.revision then
        local list = {}
        for _, c in ipairs(v.changes) do list[#list + 1] = c.kind .. " " .. c.path end
        revs[#revs + 1] = table.concat(list, "; ")
      end
    end
    return revs
  end

  local function replay_changes(out)
    local revs = {}
    for block in out:gmatch("%[rev %d+ at [^\n]*\n([^%[]*)") do
      local list = {}
      for kind, path in block:gmatch("  (%a+)%s+([^%s:]+)") do
        list[#list + 1] = kind .. " " .. path
      end
      revs[#revs + 1] = table.concat(list, "; ")
    end
    return revs
  end

  it("reproduces the recorded run's commits, and compares two policies", function()
    H.write(dir .. "/policy.lua", (POLICY:gsub('every = "5s"', 'every = "100ms"')))
    H.write(dir .. "/flags.json", '{"rps": 1}')
    local bin = H.bin("reactcfg-lua")
    local script = ("(%s --run --json --record %s/rec.jsonl %s/policy.lua > %s/run.out &"
      .. " pid=$!; sleep 0.4; echo '{\"rps\": 2}' > %s/flags.json; sleep 0.4;"
      .. " echo '{\"rps\": 3}' > %s/flags.json; sleep 0.4; kill -INT $pid; wait $pid)")
      :format(bin, dir, dir, dir, dir, dir)
    H.sh(script)
    local f = assert(io.open(dir .. "/run.out"))
    local recorded = run_changes(f:read("a"))
    f:close()
    assert.equal(3, #recorded)
    local out, code = H.sh(bin .. " replay " .. dir .. "/rec.jsonl " .. dir .. "/policy.lua")
    assert.equal(0, code, out)
    assert.same(recorded, replay_changes(out))
    -- The same recording under a policy that refuses rps above 2 decides differently.
    H.write(dir .. "/strict.lua", (POLICY:gsub('every = "5s"', 'every = "100ms"')
      :gsub("v.rps > 0", "v.rps > 0 and v.rps <= 2")))
    out, code = H.sh(bin .. " replay " .. dir .. "/rec.jsonl " .. dir .. "/policy.lua"
      .. " --compare " .. dir .. "/strict.lua")
    assert.equal(3, code, out)
    assert.matches("%- .-policy.lua: %[rev 3 at %+%d+ ms%] modified flags.rps: 2 %-> 3", out)
    assert.matches("%+ .-strict.lua: no commit 3", out)
    assert.matches("1 commit differ", out)
  end)

  it("leaves secret values out of a recording unless asked", function()
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  db = { source = rc.file "db.json", secret = true },
} }
]])
    H.write(dir .. "/db.json", '{"password": "hunter2"}')
    local bin = H.bin("reactcfg-lua")
    H.sh(("timeout -s INT 1 %s --run --record %s/rec.jsonl %s/policy.lua"):format(bin, dir, dir))
    local f = assert(io.open(dir .. "/rec.jsonl"))
    local text = f:read("a")
    f:close()
    assert.matches('"component":"db","initial":true,"secret":true', text)
    assert.is_nil(text:find("hunter2", 1, true))
    H.sh(("timeout -s INT 1 %s --run --record %s/rec2.jsonl --record-secrets %s/policy.lua")
      :format(bin, dir, dir))
    f = assert(io.open(dir .. "/rec2.jsonl"))
    text = f:read("a")
    f:close()
    assert.truthy(text:find("hunter2", 1, true))
  end)
end)
