-- SPDX-License-Identifier: MIT (see LICENSE)
-- README.md's "A 5-minute tour", run as written: its files are taken from the page, its
-- commands run in a shell with the page's setup lines, and what they print is compared
-- with what the page shows ("..." stands for lines left out). Only these differ from a
-- reader's run: the tour's directory (/tmp/tour) is a temporary one, the build directory
-- (build/) is the one under test ($RC_BIN), $HOME is a temporary one, and the
-- environment is otherwise empty.
local H = require "helpers"
local md = require "markdown"

local function abspath(p) return (H.sh("realpath " .. p):gsub("\n$", "")) end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local repo = abspath(".")
local build = abspath(H.bin(""))
local sanitized = os.getenv("RC_SANITIZE") ~= nil

local blocks, tour, home
local state = {}          -- lines that set the shell up: exports, cd, variables
local function mapped(s)
  return (s:gsub("%$PWD/build", build):gsub("%$REPO/build", build):gsub("/tmp/tour", tour))
end

-- Runs `cmd` after the setup lines in a clean environment; returns output, status.
local function shell(cmd)
  local env = { "HOME=" .. home, "PATH=/usr/local/bin:/usr/bin:/bin", "TERM=dumb" }
  for _, k in ipairs({ "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS" }) do
    if os.getenv(k) then env[#env + 1] = k .. "=" .. q(os.getenv(k)) end
  end
  local script = "cd " .. q(repo) .. "\n" .. table.concat(state, "\n") .. "\n" .. cmd
  return H.sh("env -i " .. table.concat(env, " ") .. " bash -c " .. q(script))
end

-- Whether `got` (text) shows the `want` lines, "..." matching any number of lines.
local function shows(got, want)
  local lines = {}
  for l in (got .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  if lines[#lines] == "" then lines[#lines] = nil end
  local function match(i, j)
    if j > #want then return i > #lines end
    if want[j] == "..." then
      for k = i, #lines + 1 do if match(k, j + 1) then return true end end
      return false
    end
    return lines[i] == want[j] and match(i + 1, j + 1)
  end
  return match(1, 1)
end

local function expected(lines)
  local out = {}
  for _, l in ipairs(lines) do out[#out + 1] = (l:match("^%s*%.%.%.$") and "..." or mapped(l)) end
  return out
end

-- Runs the console commands of `section`'s blocks in order, checking their output.
-- `special(cmd, block)` may take a command over (returns true when it did).
local function run_console(section, special)
  for _, b in ipairs(md.section(blocks, section)) do
    if b.lang == "console" then
      for _, c in ipairs(md.commands(b)) do
        local cmd = mapped(c.command)
        if special and special(cmd, b) then
          -- taken over
        elseif cmd:match("^export ") or cmd:match("^cd ") then
          state[#state + 1] = cmd
        else
          local out = shell(cmd .. " 2>&1")
          assert(shows(out, expected(c.output)), ("$ %s\nprinted:\n%s\nREADME shows:\n%s")
            :format(c.command, out, table.concat(c.output, "\n")))
        end
      end
    end
  end
end

-- The REPL session of a console block ("$ cd DIR && reactcfg-lua", then "> " lines and
-- what they print), typed at a terminal through spec/pty_drive.py.
local function repl_session(cmd, block)
  local dir = cmd:match('^cd "(.-)" && reactcfg%-lua$')
  if not dir then return false end
  dir = dir:gsub("%$REPO", repo)
  local steps = { { expect = "> " } }
  for line in block.text:gmatch("([^\n]*)\n") do
    local input = line:match("^> (.*)$")
    if input then
      if #steps > 1 then steps[#steps + 1] = { expect_re = "(?m)^> " } end
      steps[#steps + 1] = { send = input .. "\n" }
    elseif not line:match("^%$ ") and not line:match("^%s*%.%.%.$") then
      steps[#steps + 1] = { expect = line }
    end
  end
  steps[#steps + 1] = { expect_re = "(?m)^> " }
  steps[#steps + 1] = { eof = 0 }
  local transcript, code = H.sh(("cd %s && env -u APP_MODE NO_COLOR=1 TERM=xterm "
    .. "REACTCFG_HISTORY=%s python3 %s/spec/pty_drive.py %s -- %s/reactcfg-lua")
    :format(q(dir), q(home .. "/history"), repo, q(require("cjson").encode(steps)), build))
  assert.equal(0, code, transcript)
  state[#state + 1] = "cd " .. q(dir)   -- the next commands run where the REPL ran
  return true
end

describe("README's tour", function()
  setup(function()
    blocks = {}
    for _, b in ipairs(md.blocks("README.md")) do
      if b.heading == "## A 5-minute tour" or b.heading:match("^### %d") then
        blocks[#blocks + 1] = b
      end
    end
    tour = abspath(H.tmpdir("tour"))
    home = abspath(H.tmpdir("tour-home"))
    -- The setup lines: the first shell block, before section 1.
    local setup_block = blocks[1]
    assert.equal("sh", setup_block.lang)
    for line in setup_block.text:gmatch("([^\n]+)") do state[#state + 1] = mapped(line) end
    -- Every file the tour shows, where it says.
    for _, b in ipairs(blocks) do
      if b.name then
        local path = tour .. "/" .. b.name
        H.sh("mkdir -p " .. q(path:match("^(.*)/")))
        H.write(path, b.text)
      end
    end
  end)
  teardown(function()
    H.rmdir(tour)
    H.rmdir(home)
  end)

  it("shows every file it uses", function()
    local names = {}
    for _, b in ipairs(blocks) do if b.name then names[#names + 1] = b.name end end
    table.sort(names)
    assert.same({ "app.c", "config/.env", "config/app.toml", "policy.lua", "tour.lua" }, names)
  end)

  it("1. checks the policy and names the line of a mistake", function()
    run_console("### 1.")
  end)

  it("2. runs it: a change, a broken save and its fix, then Ctrl-C", function()
    local run_block, edits, printed
    for _, b in ipairs(md.section(blocks, "### 2.")) do
      if b.lang == "console" and b.text:match("^%$ ") then run_block = b
      elseif b.lang == "sh" then edits = b
      elseif b.lang == "console" then printed = b end
    end
    local run = mapped(md.commands(run_block)[1].command)
    local want = {}
    for l in printed.text:gmatch("([^\n]*)\n") do want[#want + 1] = mapped(l) end
    -- Each edit shows as the next commit or event line; wait for it before the next one.
    local marks, after_start = {}, false
    for _, l in ipairs(want) do
      if after_start and (l:match("^%[rev") or l:match("^[!*] ")) and
        not l:match("engine%.stopped") then
        marks[#marks + 1] = l
      end
      after_start = after_start or l:match("^%* engine%.started") ~= nil
    end
    local lines = {}
    for l in edits.text:gmatch("([^\n]+)") do lines[#lines + 1] = mapped(l) end
    assert.equal(#lines, #marks)
    local script = {
      "waitfor() { for i in $(seq 500); do grep -qF -- \"$1\" run.out && return 0; "
        .. "sleep 0.02; done; echo \"timed out waiting for $1\"; cat run.out; exit 1; }",
      "cd " .. q(tour),
      run .. " > run.out 2>&1 &", "pid=$!",
      "waitfor '* engine.started'",
    }
    for i, l in ipairs(lines) do
      script[#script + 1] = l
      script[#script + 1] = "waitfor " .. q(marks[i])
    end
    script[#script + 1] = "kill -INT $pid; wait $pid; echo \"status=$?\""
    local out = shell(table.concat(script, "\n"))
    assert.matches("status=0", out)
    local f = assert(io.open(tour .. "/run.out"))
    local got = f:read("a")
    f:close()
    assert(shows(got, want), "printed:\n" .. got)
  end)

  it("3. builds and runs the C program against the installed library", function()
    if sanitized then
      -- A program built without the sanitizer cannot load an instrumented library
      -- (install.sh is left out of that build for the same reason).
      pending("not under ASan")
      return
    end
    run_console("### 3.")
  end)

  it("4. drives the engine from Lua, the REPL's bench and the scenario runner", function()
    run_console("### 4.", repl_session)
  end)
end)
