-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg-lua's first part: --version, --check, --run [--json], clean stop on signals.
local H = require "helpers"
local cjson = require "cjson"

local sh = H.sh

describe("reactcfg-lua", function()
  local lua_bin = H.bin("reactcfg-lua")
  local dir
  before_each(function() dir = H.tmpdir("cli") end)
  after_each(function() H.rmdir(dir) end)

  it("prints its version", function()
    local out, code = sh(lua_bin .. " --version")
    assert.equal(0, code)
    assert.matches("^reactcfg%-lua %d+%.%d+%.%d+\n$", out)
  end)

  it("--check exits 0 for a good policy and prints POLICY:LINE: message for a bad one", function()
    H.write(dir .. "/good.lua",
      'local rc = require "reactcfg"\nreturn rc.policy { components = { a = rc.file "a.json" } }\n')
    local _, code = sh(lua_bin .. " --check " .. dir .. "/good.lua")
    assert.equal(0, code)
    H.write(dir .. "/bad.lua", 'local rc = require "reactcfg"\nreturn rc.policy {\n'
      .. '  components = { a = { source = rc.file "a.json", debounce = "soon" } } }\n')
    _, code = sh(lua_bin .. " --check " .. dir .. "/bad.lua >/dev/null 2>" .. dir .. "/err.txt")
    assert.equal(1, code)
    local f = assert(io.open(dir .. "/err.txt"))
    local out = f:read("a")
    f:close()
    assert.equal(dir .. "/bad.lua:3: component 'a': debounce: invalid duration \"soon\": "
      .. "expected a number followed by a unit (us, ms, s, m, h), e.g. \"200ms\" or \"1m30s\"\n",
      out)
  end)

  it("rejects unknown options with a usage message", function()
    local out, code = sh(lua_bin .. " --frobnicate")
    assert.equal(2, code)
    assert.matches("unknown option '%-%-frobnicate'", out)
  end)

  it("--run --json prints one JSON object per commit and event, and stops on SIGTERM", function()
    H.write(dir .. "/app.json", '{"port": 1}')
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { app = rc.file "app.json" } }\n')
    local out_file = dir .. "/out.jsonl"
    -- Start, wait for the first commit, save twice (one good, one broken), then SIGTERM.
    local script = ([[
%s --run --json %s/policy.lua > %s 2>&1 &
pid=$!
for i in $(seq 100); do grep -q '"revision":1' %s && break; sleep 0.05; done
printf '{"port": 2}' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
for i in $(seq 100); do grep -q '"revision":2' %s && break; sleep 0.05; done
printf '{"port": }' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
for i in $(seq 100); do grep -q 'source.error' %s && break; sleep 0.05; done
kill -TERM $pid
wait $pid
echo "status=$?"
]]):format(lua_bin, dir, out_file, out_file, dir, dir, dir, out_file, dir, dir, dir, out_file)
    local out = sh(script)
    assert.matches("status=0", out)
    local lines = {}
    for line in io.lines(out_file) do lines[#lines + 1] = cjson.decode(line) end
    local commits, errors = {}, {}
    for _, l in ipairs(lines) do
      if l.revision then commits[#commits + 1] = l end
      if l.event == "source.error" then errors[#errors + 1] = l end
    end
    assert.equal(2, #commits)
    assert.equal(1, commits[1].revision)
    assert.equal("added", commits[1].changes[1].kind)
    assert.equal("app", commits[1].changes[1].path)
    assert.same({ port = 1 }, commits[1].changes[1].new)
    assert.same({ path = "app.port", kind = "modified", old = 1, new = 2 }, commits[2].changes[1])
    assert.truthy(commits[2].time_ns > 1.6e18)
    assert.equal(1, #errors)
    assert.equal("app", errors[1].component)
    assert.equal(1, errors[1].line)
    assert.equal("engine.stopped", lines[#lines].event)
  end)

  it("--run prints changes for people by default", function()
    H.write(dir .. "/app.json", '{"port": 1}')
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { app = rc.file "app.json" } }\n')
    local out = sh(([[
%s --run %s/policy.lua > %s/out.txt 2>&1 &
pid=$!
for i in $(seq 100); do grep -q 'rev 1' %s/out.txt && break; sleep 0.05; done
kill -INT $pid; wait $pid; echo "status=$?"; cat %s/out.txt
]]):format(lua_bin, dir, dir, dir, dir))
    assert.matches("status=0", out)
    assert.matches("%[rev 1%] 1 change\n  added     app = {\"port\":1}\n", out)
  end)

  it("exits 0 when SIGINT comes twice or more while it shuts down (20 runs)", function()
    -- Before: once the first signal was handled the handlers were closed, which gives
    -- SIGINT back its default action, so a second one during shutdown killed the
    -- process (status 130) about 1 run in 8; a burst of them did nearly every run.
    H.write(dir .. "/app.json", '{"port": 1}')
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { app = rc.file "app.json",\n'
      .. '  env = rc.env { prefix = "RC_SPEC_" }, again = rc.file "app.json" } }\n')
    local out = sh(([[
for run in $(seq 20); do
  %s --run %s/policy.lua > %s/out.txt 2>&1 &
  pid=$!
  for i in $(seq 200); do grep -q 'engine.started' %s/out.txt && break; sleep 0.02; done
  kill -INT $pid; kill -INT $pid
  for i in $(seq 50); do kill -INT $pid 2>/dev/null || break; done
  wait $pid
  echo "status=$?"
done
]]):format(lua_bin, dir, dir, dir))
    local statuses = {}
    for st in out:gmatch("status=(%d+)") do statuses[#statuses + 1] = tonumber(st) end
    assert.equal(20, #statuses, out)
    for i, st in ipairs(statuses) do assert.equal(0, st, "run " .. i .. ": " .. out) end
  end)
  it("re-reads every source on SIGHUP, past a debounce, and keeps running", function()
    -- Before: SIGHUP took its default action and killed --run.
    H.write(dir .. "/app.json", '{"port": 1}')
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { app = { source = rc.file "app.json",\n'
      .. '  debounce = "1h" } } }\n')
    local out_file = dir .. "/out.jsonl"
    local out = sh(([[
%s --run --json %s/policy.lua > %s 2>&1 &
pid=$!
for i in $(seq 100); do grep -q '"revision":1' %s && break; sleep 0.05; done
printf '{"port": 2}' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
sleep 0.3
grep -c '"revision":2' %s
kill -HUP $pid
for i in $(seq 100); do grep -q '"revision":2' %s && break; sleep 0.05; done
kill -0 $pid && echo alive
kill -TERM $pid; wait $pid; echo "status=$?"
]]):format(lua_bin, dir, out_file, out_file, dir, dir, dir, out_file, out_file))
    assert.matches("^0\n", out)   -- held by the debounce until the signal
    assert.matches("alive\nstatus=0", out)
    local commit, completed
    for line in io.lines(out_file) do
      local l = cjson.decode(line)
      if l.revision == 2 then commit = l end
      if l.event == "reload.completed" and l.reload.trigger == "signal" then
        completed = l.reload
      end
    end
    assert.truthy(commit, "no revision 2")
    assert.same({ path = "app.port", kind = "modified", old = 1, new = 2 }, commit.changes[1])
    assert.truthy(completed, "no reload.completed with the trigger signal")
    assert.equal(2, completed.revision)
    assert.equal(1, completed.changes)
    assert.truthy(completed.id > 0)
  end)

  it("--cloudevents prints each line as a CloudEvents 1.0 event in structured JSON", function()
    H.write(dir .. "/app.json", '{"port": 1}')
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { app = rc.file "app.json" } }\n')
    local out_file = dir .. "/out.jsonl"
    local out = sh(([[
%s --run --json --cloudevents %s/policy.lua > %s 2>&1 &
pid=$!
for i in $(seq 100); do grep -q 'engine.started' %s && break; sleep 0.05; done
printf '{"port": }' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
for i in $(seq 100); do grep -q 'source.error' %s && break; sleep 0.05; done
kill -TERM $pid; wait $pid; echo "status=$?"
]]):format(lua_bin, dir, out_file, out_file, dir, dir, dir, out_file))
    assert.matches("status=0", out)
    local ids, types, events = {}, {}, {}
    for line in io.lines(out_file) do
      local e = cjson.decode(line)
      events[#events + 1] = e
      assert.equal("1.0", e.specversion)
      assert.is_string(e.id)
      assert.is_nil(ids[e.id], "ids must be unique: " .. e.id)
      ids[e.id] = true
      assert.matches("^reactcfg://[^/]+/.*policy%.lua$", e.source)
      assert.matches("^io%.reactcfg%.", e.type)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", e.time)
      assert.equal("application/json", e.datacontenttype)
      assert.is_table(e.data)
      types[#types + 1] = e.type
    end
    assert.equal("io.reactcfg.commit", events[1].type)
    assert.equal(1, events[1].data.revision)
    assert.same({ port = 1 }, events[1].data.changes[1].new)
    local err
    for _, e in ipairs(events) do if e.type == "io.reactcfg.source.error" then err = e end end
    assert.truthy(err, table.concat(types, " "))
    assert.equal("app", err.subject)
    assert.equal("source.error", err.data.event)
    assert.equal(1, err.data.line)
    assert.equal("io.reactcfg.engine.stopped", types[#types])
  end)

  it("shows a reload a module refused, and the rollback, to people", function()
    H.write(dir .. "/app.json", '{"pool": 4}')
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy {
  components = { app = rc.file "app.json" },
  modules = { pool = { paths = "app.pool", apply = function(changes, snapshot)
    if snapshot.app.pool > 10 then error("pool size above 10") end
  end } },
}
]])
    local out = sh(([[
%s --run %s/policy.lua > %s/out.txt 2>&1 &
pid=$!
for i in $(seq 100); do grep -q 'rev 1' %s/out.txt && break; sleep 0.05; done
printf '{"pool": 50}' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
for i in $(seq 100); do grep -q 'reload.failed' %s/out.txt && break; sleep 0.05; done
printf '{"pool": 8}' > %s/app.json.tmp && mv %s/app.json.tmp %s/app.json
for i in $(seq 100); do grep -q 'rev 2' %s/out.txt && break; sleep 0.05; done
kill -INT $pid; wait $pid; echo "status=$?"; cat %s/out.txt
]]):format(lua_bin, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir))
    assert.matches("status=0", out)
    assert.matches("! module.failed [^\n]*pool size above 10", out)
    assert.matches("! reload.failed ", out)
    assert.matches("%[rev 2%] 1 change\n  modified  app.pool: 4 %-> 8\n", out)
    assert.not_matches("50", out:match("%[rev 2%].*") or "")
    assert.not_matches("reload.started", out)
    assert.not_matches("module.completed", out)
  end)
end)
