-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.exec with real commands: sh scripts written into the policy's directory that print
-- changing output, fail with a status and standard error, sleep past the timeout, print
-- more than max_bytes, do not exist, or still run when the source stops (no zombie, no
-- orphan left running); the explicit environment; a start from the cache.
local H = require "spec.lua.helpers"

local QUICK = "backoff = { min = '20ms', max = '100ms' }, circuit = false"

local policy = H.source_policy("app", "exec")

-- Writes an executable sh script `name` into `dir`.
local function script(dir, name, body)
  H.write(dir .. "/" .. name, "#!/bin/sh\n" .. body)
  assert(select(2, H.sh(("chmod +x '%s/%s'"):format(dir, name))) == 0)
end

local wait_for = H.wait_for

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local t = f:read("a")
  f:close()
  return t
end

-- The state letter of process `pid` ("R", "S", "Z", ...), or nil when it is gone.
local function proc_state(pid)
  local stat = read("/proc/" .. pid .. "/stat")
  return stat and stat:match("^%d+ %b() (%a)")
end

-- Whether process `pid` is gone or a zombie (killed, not running) within 5 s: a
-- process killed by a signal runs a moment more while it exits.
local function ends(pid)
  for _ = 1, 100 do
    local st = proc_state(pid)
    if st == nil or st == "Z" then return true end
    H.sh("sleep 0.05")
  end
  return false
end

-- A started engine on `text` in `dir` (H.engine writes the policy itself; scripts must
-- exist before start, so this writes them first through `files`).
local function engine(src, files, extra)
  return H.engine(policy(src, extra), files, "exec")
end

describe("rc.exec", function()
  after_each(H.cleanup)

  it("checks its options at load time", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.exec { command = { "x" }, comand = 1 } end)
    for bad, msg in pairs {
      ["interval = '1s'"] = "'command' is required",
      ["command = 'ls -l'"] = "'command' must be a list",
      ["command = {}"] = "must name a program",
      ["command = { 'ls', 3 }"] = "command[2] must be a non-empty string",
      ["command = { 'ls' }, env = { ['A=B'] = 'x' }"] = "not a variable name",
      ["command = { 'ls' }, env = { A = 1 }"] = "must be a string",
      ["command = { 'ls' }, pass_env = 'HOME'"] = "'pass_env' must be a list",
      ["command = { 'ls' }, inherit_env = 'yes'"] = "'inherit_env' must be true or false",
      ["command = { 'ls' }, interval = '1ms'"] = "interval must be at least 10ms",
      ["command = { 'ls' }, format = 'xml'"] = "unknown format",
      ["command = { 'ls' }, token_env = 'T'"] = "unknown option 'token_env'",
    } do
      local err = H.load_error(policy(bad))
      assert.matches(msg, err, 1, true)
    end
  end)

  it("parses the output, follows changes, and commits only real ones", function()
    local dir = H.tmpdir("exec-out")
    H.write(dir .. "/value.json", '{"a": 1}')
    local e = engine(("command = { 'cat', %q }, interval = '30ms'"):format(dir
      .. "/value.json"))
    assert.same({ a = 1 }, e:get("app"))
    e:commits()
    e:run("200ms")                                   -- several runs, the same output
    assert.equal(0, #e:commits())
    H.write(dir .. "/value.json", '{"a": 2}')
    assert.truthy(e:run_until(function() return e:get("app.a") == 2 end))
    assert.same({ "modified app.a" }, H.change_strings(e:commits()[1]))
    -- format = "text": the output as it is; a relative program path is the policy's.
    local e2, d2 = engine("command = { './hello.sh' }, format = 'text', " .. QUICK,
      { ["hello.sh"] = "#!/bin/sh\necho hello\n" })
    assert.is_nil(e2:get("app"))                     -- not executable: an error
    assert.matches("not an executable file", H.events(e2, "source.error")[1].message)
    H.sh(("chmod +x '%s/hello.sh'"):format(d2))             -- the retry runs it
    assert.truthy(e2:run_until(function() return e2:get("app") == "hello\n" end))
    H.rmdir(dir)
    assert.equal(0, #H.events(e, "source.error"))
    -- Each run's time, spawn to exit, is in the fetch-duration histogram of its kind.
    assert.truthy(H.fetch_count(e, "exec") >= 3)
  end)

  it("reports a non-zero exit with the end of stderr, keeps the value, recovers",
    function()
    local dir = H.tmpdir("exec-fail")
    script(dir, "cfg.sh", ([[
if [ -f %s/broken ]; then
  echo "first line" >&2; echo "reading the vault" >&2
  echo "permission denied: token expired" >&2
  exit 3
fi
echo '{"v": 1}'
]]):format(dir))
    local e = engine(("command = { %q }, interval = '30ms', %s"):format(dir .. "/cfg.sh",
      QUICK))
    assert.same({ v = 1 }, e:get("app"))
    H.write(dir .. "/broken", "")
    local ev = wait_for(e, "source.error", "exited with status 3")
    assert.truthy(ev)
    assert.matches("cfg.sh exited with status 3: first line | reading the vault | "
      .. "permission denied: token expired", ev.message, 1, true)
    assert.same({ v = 1 }, e:get("app"))
    os.remove(dir .. "/broken")
    assert.truthy(H.wait_event(e, "source.recovered"))
    assert.same({ v = 1 }, e:get("app"))
    -- Output that does not parse is an error too.
    script(dir, "cfg.sh", "echo '{\"v\": '\n")
    ev = wait_for(e, "source.error", ".")
    assert.truthy(ev)
    assert.matches("exec .*/cfg.sh", ev.file)
    assert.same({ v = 1 }, e:get("app"))
    H.rmdir(dir)
  end)

  it("kills a command that runs past the timeout, with its children", function()
    local dir = H.tmpdir("exec-slow")
    script(dir, "slow.sh", ([[
if [ -f %s/slow ]; then
  sleep 30 &
  echo $! >> %s/child.pid
  echo $$ >> %s/sh.pid
  echo "about to hang" >&2
  wait
fi
echo '"fast"'
]]):format(dir, dir, dir))
    local e = engine(("command = { %q }, interval = '30ms', timeout = '300ms', %s")
      :format(dir .. "/slow.sh", QUICK))
    assert.equal("fast", e:get("app"))
    H.write(dir .. "/slow", "")
    local ev = wait_for(e, "source.error", "did not finish within 300 ms")
    assert.truthy(ev)
    assert.matches("and was killed: about to hang", ev.message, 1, true)
    assert.equal("fast", e:get("app"))
    -- The script and the sleep it started are gone (the sleep's parent died first, so
    -- it may linger as a zombie of whoever adopted it, never running). The first run's:
    -- the retries run it again meanwhile.
    local sh_pid, child_pid = read(dir .. "/sh.pid"), read(dir .. "/child.pid")
    assert.truthy(e:run_until(function() return proc_state(sh_pid:match("%d+")) == nil end))
    assert.truthy(ends(child_pid:match("%d+")))
    os.remove(dir .. "/slow")
    assert.truthy(H.wait_event(e, "source.recovered"))
    H.rmdir(dir)
  end)

  it("refuses output over max_bytes and kills the command", function()
    local dir = H.tmpdir("exec-big")
    H.write(dir .. "/n", "10")
    script(dir, "big.sh", ([[
n=$(cat %s/n)
printf '"'; head -c "$n" /dev/zero | tr '\0' x; printf '"'
]]):format(dir))
    local e = engine(("command = { %q }, interval = '30ms', max_bytes = 1000, "
      .. "limits = { max_depth = 3 }, %s"):format(dir .. "/big.sh", QUICK))
    assert.equal(("x"):rep(10), e:get("app"))
    H.write(dir .. "/n", "5000000")
    local ev = wait_for(e, "source.error", "more than max_bytes")
    assert.truthy(ev)
    assert.matches("big.sh printed more than max_bytes (1000 bytes) and was killed",
      ev.message, 1, true)
    assert.equal(("x"):rep(10), e:get("app"))
    -- limits apply to what it prints too.
    script(dir, "big.sh", "echo '[[[[1]]]]'\n")
    assert.truthy(wait_for(e, "source.error", "nesting deeper than 3 levels"))
    assert.equal(("x"):rep(10), e:get("app"))
    script(dir, "big.sh", ([[
n=$(cat %s/n)
printf '"'; head -c "$n" /dev/zero | tr '\0' x; printf '"'
]]):format(dir))
    H.write(dir .. "/n", "20")
    assert.truthy(e:run_until(function() return e:get("app") == ("x"):rep(20) end))
    assert.equal(1, #H.events(e, "source.recovered"))
    H.rmdir(dir)
  end)

  it("reports a program that does not exist", function()
    local e = engine("command = { 'reactcfg-no-such-program', 'x' }, " .. QUICK)
    local ev = wait_for(e, "source.error", "not found in PATH")
    assert.truthy(ev)
    assert.matches("cannot run reactcfg-no-such-program: not found in PATH", ev.message,
      1, true)
    assert.is_nil(e:get("app"))
    local e2 = engine("command = { '/nonexistent/prog' }, " .. QUICK)
    assert.truthy(wait_for(e2, "source.error", "no such file"))
  end)

  it("kills a running command when the source stops: no zombie, nothing left running",
    function()
    local dir = H.tmpdir("exec-stop")
    script(dir, "hang.sh", ([[
if [ -f %s/hang ]; then
  sleep 30 &
  echo $! > %s/child.pid
  echo $$ > %s/sh.pid
  wait
fi
echo 1
]]):format(dir, dir, dir))
    local e = engine(("command = { %q }, interval = '30ms', timeout = '60s'")
      :format(dir .. "/hang.sh"))
    assert.equal(1, e:get("app"))
    H.write(dir .. "/hang", "")
    assert.truthy(e:run_until(function() return read(dir .. "/sh.pid") ~= nil end))
    e:run("50ms")
    local sh_pid = read(dir .. "/sh.pid"):match("%d+")
    local child_pid = read(dir .. "/child.pid"):match("%d+")
    assert.truthy(proc_state(sh_pid))                -- running (sleeping in wait)
    e:close()                                        -- stops the source while it runs
    -- Reaped by the engine (a zombie of ours would still be listed, state Z).
    assert.is_nil(proc_state(sh_pid))
    assert.truthy(ends(child_pid))
    H.rmdir(dir)
  end)

  it("passes only the environment it is given, unless inherit_env", function()
    local show = "command = { 'sh', '-c', 'printf \"%s|%s|%s\" \"$A\" \"$RC_SPEC_PASS\" "
      .. "\"$RC_SPEC_PARENT\"' }, format = 'text'"
    local e = engine(show .. ", env = { A = 'from-env' }, pass_env = { 'RC_SPEC_PASS' }")
    e:setenv("RC_SPEC_PASS", "passed")               -- runs it again at once
    e:setenv("RC_SPEC_PARENT", "parent")
    assert.truthy(e:run_until(function() return e:get("app") == "from-env|passed|" end))
    local e2 = engine(show .. ", inherit_env = true, env = { RC_SPEC_PASS = 'mine' }")
    assert.truthy(e2:run_until(function() return e2:get("app") == "|mine|parent" end))
    e:setenv("RC_SPEC_PASS", nil)
    e:setenv("RC_SPEC_PARENT", nil)
  end)

  it("runs again on an environment change only when a run reads what changed, and not "
    .. "while the circuit is open", function()
    local dir = H.tmpdir("exec-env")
    script(dir, "cfg.sh", ([[
echo run >> %s/runs
[ -f %s/broken ] && exit 1
printf '"%%s"' "$RC_SPEC_EXEC_ENV"
]]):format(dir, dir))
    local function runs() return select(2, read(dir .. "/runs"):gsub("\n", "")) end
    local e = engine(("command = { %q }, pass_env = { 'RC_SPEC_EXEC_ENV' }, backoff = { min = "
      .. "'10ms', max = '20ms' }, circuit = { failures = 2, cooldown = '1h' }")
      :format(dir .. "/cfg.sh"))
    assert.equal("", e:get("app"))
    assert.equal(1, runs())
    e:setenv("RC_SPEC_EXEC_OTHER", "x")                 -- no run reads it
    e:run("300ms")
    assert.equal(1, runs())
    e:setenv("RC_SPEC_EXEC_ENV", "a")                  -- passed on: runs again
    assert.truthy(e:run_until(function() return e:get("app") == "a" end))
    assert.equal(2, runs())
    H.write(dir .. "/broken", "")
    e:setenv("RC_SPEC_EXEC_ENV", "b")                  -- fails, and its retry: circuit open
    assert.truthy(wait_for(e, "component.state", "circuit open after 2 failures"))
    local open = runs()
    e:setenv("RC_SPEC_EXEC_ENV", "c")
    e:run("300ms")
    assert.equal(open, runs())
    assert.equal("a", e:get("app"))
    e:setenv("RC_SPEC_EXEC_ENV", nil)
    e:setenv("RC_SPEC_EXEC_OTHER", nil)
    assert.truthy(e:run_until(function()
      return not os.getenv("RC_SPEC_EXEC_ENV") and not os.getenv("RC_SPEC_EXEC_OTHER")
    end))
    H.rmdir(dir)
  end)

  it("retries a failing command with backoff under the circuit breaker", function()
    local dir = H.tmpdir("exec-circuit")
    script(dir, "cfg.sh", ([[
echo run >> %s/runs
[ -f %s/broken ] && exit 1
echo 1
]]):format(dir, dir))
    H.write(dir .. "/broken", "")
    local e = engine(("command = { %q }, interval = '20ms', backoff = { min = '10ms', "
      .. "max = '20ms' }, circuit = { failures = 3, cooldown = '400ms' }")
      :format(dir .. "/cfg.sh"), nil, ", startup = 'default'")
    assert.truthy(wait_for(e, "component.state", "circuit open after 3 failures"))
    -- Open: no run until the cool-down ends (then one probe, which fails again).
    local runs = select(2, read(dir .. "/runs"):gsub("\n", ""))
    assert.equal(3, runs)
    os.remove(dir .. "/broken")
    assert.truthy(wait_for(e, "component.state", "circuit closed"))
    assert.truthy(e:run_until(function() return e:get("app") == 1 end))
    H.rmdir(dir)
  end)

  -- exec has no connection to lose: its "server" is whatever the command talks to. A run
  -- that fails (here one asked for by a reload) is retried on the default backoff (1 s
  -- doubling to 5 s), not at the next interval (an hour away), so the value is right
  -- within seconds of the service's return, whatever changed while it was down.
  it("after a failed run, runs again on the default backoff, not the interval, and takes "
    .. "what changed meanwhile", function()
    local dir = H.tmpdir("exec-resync")
    if dir:sub(1, 1) ~= "/" then dir = os.getenv("PWD") .. "/" .. dir end
    H.write(dir .. "/value", "1")
    script(dir, "cfg.sh", ([[
[ -f %s/broken ] && { echo "service unavailable" >&2; exit 1; }
printf '{"v": %%s}' "$(cat %s/value)"
]]):format(dir, dir))
    local e = engine(("command = { %q }, interval = '1h'"):format(dir .. "/cfg.sh"))
    assert.same({ v = 1 }, e:get("app"))
    H.write(dir .. "/broken", "")
    assert(e:reload("app"))
    assert.truthy(wait_for(e, "source.error", "service unavailable"))
    H.write(dir .. "/value", "2")                   -- changed while it was down
    os.remove(dir .. "/broken")
    assert.truthy(e:run_until(function() return e:get("app.v") == 2 end, "10s"))
    assert.truthy(H.wait_event(e, "source.recovered"))
    H.rmdir(dir)
  end)

  it("with cache_for, runs once and holds the answer with the source stopped", function()
    local dir = H.tmpdir("exec-once")
    H.write(dir .. "/n", "1")
    local e = engine(("command = { 'cat', %q }, interval = '20ms'"):format(dir .. "/n"),
      nil, ", cache_for = '1h'")
    assert.equal(1, e:get("app"))
    assert.truthy(wait_for(e, "component.state", "holding the value"))
    H.write(dir .. "/n", "2")
    e:run("200ms")                                   -- no run while it holds
    assert.equal(1, e:get("app"))
    H.rmdir(dir)
  end)

  it("starts from the cache while the command fails", function()
    local dir = H.tmpdir("exec-cache")
    if dir:sub(1, 1) ~= "/" then dir = os.getenv("PWD") .. "/" .. dir end
    script(dir, "cfg.sh", ([[
[ -f %s/broken ] && { echo down >&2; exit 1; }
echo '{"v": 7}'
]]):format(dir))
    local text = ([[
local rc = require "reactcfg"
return rc.policy { cache = %q, components = {
  app = { source = rc.exec { command = { %q }, interval = "50ms", %s },
          startup = "cached" },
} }
]]):format(dir .. "/cache", dir .. "/cfg.sh", QUICK)
    local e = H.engine(text)
    assert.truthy(e:run_until(function() return e:get("app.v") == 7 end))
    e:run("100ms")
    e:close()
    H.write(dir .. "/broken", "")
    local e2 = H.engine(text)
    assert.same({ v = 7 }, e2:get("app"))            -- from the cache
    assert.truthy(wait_for(e2, "source.error", "exited with status 1: down"))
    os.remove(dir .. "/broken")
    assert.truthy(wait_for(e2, "component.state", "cached value is replaced"))
    H.rmdir(dir)
  end)
end)
