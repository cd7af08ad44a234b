-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg-lua as a Lua interpreter: the interactive REPL driven through a
-- pseudo-terminal (spec/pty_drive.py), and the non-interactive -e, script and stdin runs.
local H = require "helpers"
local cjson = require "cjson"

local bin = H.bin("reactcfg-lua")
local here = debug.getinfo(1, "S").source:match("^@(.*)/lua/[^/]*$") or "spec"
local driver = here .. "/pty_drive.py"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Plays `steps` (see spec/pty_drive.py) against the REPL on a terminal. `env` adds
--- environment variables (NO_COLOR is set unless env.NO_COLOR == false). Returns the
--- transcript (escape sequences removed) and the driver's exit status (0: every step passed).
local function drive(steps, env, args)
  local vars = { "NO_COLOR=1", "TERM=xterm" }
  for k, v in pairs(env or {}) do
    if k == "NO_COLOR" and v == false then
      vars[1] = "-u NO_COLOR"
    else
      vars[#vars + 1] = k .. "=" .. q(v)
    end
  end
  -- A step list may hold lists of steps (from `line`): flatten them in order.
  local flat = {}
  local function add(list)
    for _, st in ipairs(list) do
      if st[1] then add(st) else flat[#flat + 1] = st end
    end
  end
  add(steps)
  steps = flat
  local cmd = "env " .. table.concat(vars, " ") .. " python3 " .. q(driver) .. " "
    .. q(cjson.encode(steps)) .. " -- " .. q(bin) .. (args and (" " .. args) or "")
  return H.sh(cmd)
end

-- Steps: type a line, then wait for `want` and the next prompt (typing ahead of the
-- prompt loses keys such as Ctrl-D, which the terminal treats specially until the line
-- editor takes it over). A list of steps: `drive` flattens it in place (returned as
-- several values it would be cut to its first one anywhere but last in a list).
local function line(text, want)
  local s = { { send = text .. "\n" } }
  if want then s[#s + 1] = { expect = want } end
  s[#s + 1] = { expect_re = "(?m)^> " }
  return s
end

-- The prompt at the start of a line (a redrawn ">> " line also contains "> ").
local PROMPT = { expect = "> " }
local EOF = { eof = 0 }

describe("the REPL", function()
  local dir, hist
  before_each(function()
    dir = H.tmpdir("repl")
    hist = dir .. "/history"
  end)
  after_each(function() H.rmdir(dir) end)

  it("prints the value of an expression, without '='", function()
    local out, code = drive({ PROMPT, line("1 + 41", "42\n"), line("'a' .. 'b', 2 ^ 3"),
      EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
    assert.matches('"ab"\t8%.0\n', out)
    assert.not_matches("=", (out:gsub("> [^\n]*\n", "")))
  end)

  it("continues an unfinished statement on a '>>' line, then runs it", function()
    local out, code = drive({ PROMPT, { send = "function sq(x)\n" }, { expect = ">> " },
      { send = "return x * x\n" }, { expect = ">> " }, line("end"),
      line("sq(12)", "144\n"), EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
  end)

  it("prints a runtime error and goes on with the next line", function()
    local out, code = drive({ PROMPT, line("error('ka' .. 'put')", "kaput"),
      line("nil + 1", "attempt to perform arithmetic"), line("6 * 7", "42\n"),
      EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
    assert.matches("reactcfg%-lua: stdin:1: kaput", out)
  end)

  it("pretty-prints tables nested, keys sorted, cycles marked", function()
    local out, code = drive({ PROMPT, line("t = { b = { 1, 2 }, a = 'x', [3] = true }"),
      line("t", "}\n"), line("t.self = t"), line("t.long = ('y'):rep(60)"),
      line("t", "<cycle"), EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
    assert.matches('\n{ %[3%] = true, a = "x", b = { 1, 2 } }\n', out)
    assert.matches('{\n  %[3%] = true,\n  a = "x",\n  b = { 1, 2 },\n  long = "y+",\n'
      .. '  self = <cycle: table: 0x%x+>,\n}\n', out)
  end)

  it("colours values on a terminal unless NO_COLOR is set", function()
    local out, code = drive({ PROMPT, { send = "{ a = 's' }\n" }, { expect_raw = "\27[36ma" },
      PROMPT, EOF }, { REACTCFG_HISTORY = hist, NO_COLOR = false })
    assert.equal(0, code, out)
  end)

  it("completes fields after '.' (rc.engi -> rc.engine) and globals", function()
    -- If the tab did nothing, `rc.engi` is nil and the comparison prints false; an
    -- uncompleted global is an arithmetic error.
    local out, code = drive({ PROMPT, line("rc.engi\t == rc.engine", "true\n"),
      line("my_unique_global = 42"), line("my_uniq\t + 1", "43\n"),
      line("s = 'text'"), line("s:upp\t()", '"TEXT"'), EOF },
      { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
  end)

  it("runs the test bench at the prompt and completes component names in strings",
    function()
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  settings = { source = rc.file "settings.json", throttle = "5s" },
} }
]])
    -- `push("set<TAB>` must become `push("settings"`, else the push names no component.
    local out, code = drive({ PROMPT,
      line("policy('" .. dir .. "/policy.lua', { sources = false })"),
      line("push(\"set\t\", { port = 1 })", "true"),
      line("push('settings', { port = 2 })", "true"),
      line("get('settings.port')", "1\n"),
      line("advance('5s')"),
      line("get('settings.port')", "2\n"),
      line("explain()", "throttle: no token, held until +5000 ms"),
      line("components()", "settings  active"),
      EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
    assert.matches("modified settings.port: 1 %-> 2", out)
  end)

  it("keeps history across runs: the up arrow recalls the last session's line", function()
    local out, code = drive({ PROMPT, line("'remem' .. 'bered'", '"remembered"'), EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
    local f = assert(io.open(hist))
    assert.matches("'remem' .. 'bered'", f:read("a"))
    f:close()
    out, code = drive({ PROMPT, { send = "\27[A\n" }, { expect = '"remembered"' }, PROMPT,
      EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
  end)

  it("tolerates a history file it cannot write", function()
    local out, code = drive({ PROMPT, line("1 + 1", "2\n"), EOF },
      { REACTCFG_HISTORY = dir .. "/no/such/dir/history" })
    assert.equal(0, code, out)
  end)

  it("clears the line on Ctrl-C and exits 0 on Ctrl-D", function()
    local out, code = drive({ PROMPT, { send = "garbage_xyz" }, { expect = "garbage_xyz" },
      { send = "\3" }, PROMPT, line("10 + 1", "11\n"), EOF },
      { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
  end)

  it("drops a half-typed statement on Ctrl-C at a '>>' line", function()
    -- Before the fix the dropped line's statement stayed pending: `t = {` then `1 + 1`
    -- was still unfinished, so no value was printed.
    local out, code = drive({ PROMPT, { send = "t = {\n" }, { expect = ">> " },
      { send = "x = 1," }, { expect = "x = 1," }, { send = "\3" }, PROMPT,
      line("1 + 1", "2\n"), line("t", "nil\n"), EOF }, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
  end)

  it("keeps a typed-ahead line from being echoed twice", function()
    -- The terminal echoes nothing itself while the prompt is up: a line sent the moment
    -- the prompt appears shows once.
    local steps = { PROMPT }
    for i = 1, 5 do steps[#steps + 1] = { send = ("'echo%d'\n"):format(i) } ; steps[#steps + 1] = PROMPT end
    steps[#steps + 1] = EOF
    local out, code = drive(steps, { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
    for i = 1, 5 do
      local _, n = out:gsub("'echo" .. i .. "'", "")
      assert.equal(1, n, out)
    end
  end)

  it("reads and writes history as plain lines, one statement each", function()
    H.write(hist, "old_line = 1\n")
    local out, code = drive({ PROMPT, { send = "\27[A\n" }, { expect = "old_line = 1" },
      PROMPT, { send = "function f()\n" }, { expect = ">> " }, line("return 'é' end"),
      line("f()", '"é"'), EOF }, { REACTCFG_HISTORY = hist, LANG = "C.UTF-8" })
    assert.equal(0, code, out)
    local f = assert(io.open(hist))
    local text = f:read("a")
    f:close()
    assert.equal("old_line = 1\nold_line = 1\nfunction f() return 'é' end\nf()\n", text)
  end)

  it("lists the commands with help()", function()
    local out, code = drive({ PROMPT, line("help()", "Ctrl-D exits"), EOF },
      { REACTCFG_HISTORY = hist })
    assert.equal(0, code, out)
    assert.matches("rc%.engine%(POLICY%)", out)
  end)

  it("starts with -i after running -e code", function()
    local out, code = drive({ { expect = "from -e" }, PROMPT, line("answer", "42\n"), EOF }, { REACTCFG_HISTORY = hist }, "-e " .. q("answer = 42 print('from -e')")
      .. " -i")
    assert.equal(0, code, out)
  end)
end)

describe("reactcfg-lua without a terminal", function()
  local dir
  before_each(function() dir = H.tmpdir("lua") end)
  after_each(function() H.rmdir(dir) end)

  it("-e runs code, with rc and cjson loaded", function()
    local out, code = H.sh(bin .. " -e " .. q("print(type(rc.engine), cjson.encode({ 1 }))"))
    assert.equal(0, code)
    assert.equal("function\t[1]\n", out)
  end)

  it("-e reports an error as 'reactcfg-lua: message' and exits 1", function()
    local out, code = H.sh(bin .. " -e " .. q("error('boom')") .. " 2>&1 >/dev/null")
    assert.equal(1, code)
    assert.equal("reactcfg-lua: (command line):1: boom\n", out)
    out, code = H.sh(bin .. " -e " .. q("x ="))
    assert.equal(1, code)
    assert.matches("^reactcfg%-lua: %(command line%):1: unexpected symbol near <eof>\n", out)
  end)

  it("runs a script file with its arguments in arg and ...", function()
    H.write(dir .. "/s.lua", "print(arg[0] == ..., #arg, arg[1], arg[2], select('#', ...))\n"
      .. "print(select(2, ...))\n")
    local out, code = H.sh(bin .. " " .. dir .. "/s.lua one --two")
    assert.equal(0, code)
    assert.equal("false\t2\tone\t--two\t2\n--two\n", out)
  end)

  it("exits 1 when a script fails or cannot be read", function()
    H.write(dir .. "/bad.lua", "local x = nil\nreturn x.field\n")
    local out, code = H.sh(bin .. " " .. dir .. "/bad.lua")
    assert.equal(1, code)
    assert.matches("^reactcfg%-lua: [^\n]*bad%.lua:2: attempt to index a nil value", out)
    out, code = H.sh(bin .. " " .. dir .. "/missing.lua")
    assert.equal(1, code)
    assert.matches("cannot open", out)
  end)

  it("reads a script from piped stdin, or from '-'", function()
    local out, code = H.sh("echo 'print(6 * 7)' | " .. bin)
    assert.equal(0, code)
    assert.equal("42\n", out)
    out, code = H.sh("echo 'print(select(\"#\", ...))' | " .. bin .. " -")
    assert.equal(0, code)
    assert.equal("0\n", out)
    out, code = H.sh("echo 'error(\"no\")' | " .. bin)
    assert.equal(1, code)
    assert.matches("^reactcfg%-lua: stdin:1: no", out)
  end)

  it("drives an engine from a script", function()
    H.write(dir .. "/app.json", '{"port": 8080}')
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { app = rc.file "app.json" } }\n')
    H.write(dir .. "/s.lua", "local e = assert(rc.engine(arg[1]))\nassert(e:start())\n"
      .. "e:run_until(function() return e:revision() > 0 end, '5s')\n"
      .. "print(e:get('app.port'))\ne:close()\n")
    local out, code = H.sh(bin .. " " .. dir .. "/s.lua " .. dir .. "/policy.lua")
    assert.equal(0, code, out)
    assert.equal("8080\n", out)
  end)

  it("rejects an unknown option in Lua mode", function()
    local out, code = H.sh(bin .. " -e 'x = 1' -z")
    assert.equal(2, code)
    assert.matches("unknown option '%-z'", out)
  end)
end)
