-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg-lua run as a sidecar (docs/SIDECAR.md): outputs rendered and written
-- atomically, --once, --dry-run, commands, the --exec child; and docs/SIDECAR.md's
-- nginx example with a real nginx.
local H = require "helpers"
local md = require "markdown"
local cjson = require "cjson"

local bin = H.sh("realpath " .. H.bin("reactcfg-lua")):gsub("\n$", "")
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Shell functions for the background runs: waitfor FILE PATTERN (a bounded wait).
-- waitcount FILE PATTERN N: until N lines match.
local SH = [[
waitfor() { for i in $(seq 500); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.02; done
  echo "timed out waiting for '$2' in $1"; cat "$1"; return 1; }
waitcount() { for i in $(seq 500); do [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
  sleep 0.02; done; echo "timed out waiting for $3 lines '$2' in $1"; cat "$1"; return 1; }
]]

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local POLICY = [[
local rc = require "reactcfg"
return rc.policy {
  components = {
    backends = rc.file "backends.json",
    creds = { source = rc.file "creds.json", secret = true },
  },
  outputs = {
    upstreams = { template = "up.tmpl", path = "out/up.conf",
                  command = { "sh", "-c", "echo ran >> commands.log" } },
    token = { text = "token={{ creds.token }}\n", path = "out/token.txt", mode = "0600" },
  },
}
]]
local TEMPLATE = [[
upstream app {
  {% for _, s in ipairs(backends.servers) do %}
  server {{ s.host }}:{{ s.port }};
  {% end %}
}
]]
local function backends(...)
  local list = {}
  for _, port in ipairs({ ... }) do list[#list + 1] = { host = "127.0.0.1", port = port } end
  return cjson.encode({ servers = list })
end

describe("reactcfg-lua run with outputs", function()
  local dir
  before_each(function()
    dir = H.tmpdir("sidecar")
    H.write(dir .. "/policy.lua", POLICY)
    H.write(dir .. "/up.tmpl", TEMPLATE)
    H.write(dir .. "/backends.json", backends(8081))
    H.write(dir .. "/creds.json", '{"token": "s3cret"}')
  end)
  after_each(function() H.rmdir(dir) end)

  local function once(extra)
    return H.sh(("cd %s && %s run policy.lua --once %s"):format(q(dir), bin, extra or ""))
  end

  it("--once renders every output, runs the commands of changed files, exits 0", function()
    local out, code = once()
    assert.equal(0, code, out)
    assert.equal("upstream app {\n  server 127.0.0.1:8081;\n}\n", read(dir .. "/out/up.conf"))
    assert.equal("token=s3cret\n", read(dir .. "/out/token.txt"))
    assert.matches("%* output%.written %[upstreams%] [^\n]*/out/up%.conf: 42 bytes", out)
    assert.matches("%* command%.finished %[upstreams%] sh %-c echo ran >> commands%.log: exit "
      .. "status 0", out)
    assert.equal("ran\n", read(dir .. "/commands.log"))
    assert.not_matches("s3cret", out)
    local modes = H.sh(("stat -c '%%a' %s/out/up.conf %s/out/token.txt"):format(dir, dir))
    assert.equal("644\n600\n", modes)
  end)

  it("says a policy's print once (the outputs' second reading is silent), at file:line",
    function()
    H.write(dir .. "/policy.lua", 'print("loading " .. "the policy")\n' .. POLICY)
    local out, code = once()
    assert.equal(0, code, out)
    local _, n = out:gsub("policy%.log", "")
    assert.equal(1, n, out)
    -- A print has a line and no column: no ":0" for the column.
    assert.matches("%* policy%.log policy%.lua:1: loading the policy\n", out)
  end)

  it("writes a file only when its bytes change, keeping its mode and owner", function()
    assert.equal(0, select(2, once()))
    local inode = H.sh("stat -c %i " .. dir .. "/out/up.conf")
    -- Same configuration: nothing written, no command.
    local out, code = once()
    assert.equal(0, code, out)
    assert.not_matches("output%.written", out)
    assert.equal(inode, H.sh("stat -c %i " .. dir .. "/out/up.conf"))
    assert.equal("ran\n", read(dir .. "/commands.log"))
    -- A new backend: a new file (renamed over the old one) with the old mode and owner.
    local root = H.sh("id -u") == "0\n"
    H.sh(("chmod 0640 %s/out/up.conf"):format(dir))
    if root then H.sh(("chown nobody:nogroup %s/out/up.conf"):format(dir)) end
    H.write(dir .. "/backends.json", backends(8081, 8082))
    out, code = once()
    assert.equal(0, code, out)
    assert.matches("server 127.0.0.1:8082;", read(dir .. "/out/up.conf"))
    assert.not_equal(inode, H.sh("stat -c %i " .. dir .. "/out/up.conf"))
    assert.equal("640" .. (root and " nobody:nogroup" or "") .. "\n",
      H.sh(("stat -c '%%a%s' %s/out/up.conf"):format(root and " %U:%G" or "", dir)))
    assert.equal("ran\nran\n", read(dir .. "/commands.log"))
    -- No temporary file is left beside it.
    assert.equal("token.txt\nup.conf\n", H.sh("ls -A " .. dir .. "/out"))
  end)

  it("replaces the file a symlink names and keeps the link", function()
    H.sh(("mkdir -p %s/out %s/real && ln -s ../real/up.conf %s/out/up.conf"):format(dir, dir,
      dir))
    local out, code = once()
    assert.equal(0, code, out)
    assert.equal("../real/up.conf\n", H.sh("readlink " .. dir .. "/out/up.conf"))
    assert.matches("server 127%.0%.0%.1:8081", read(dir .. "/real/up.conf"))
  end)

  it("--once without outputs prints revision 1 and exits 0", function()
    H.write(dir .. "/plain.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { backends = rc.file "backends.json" } }\n')
    local out, code = H.sh(("cd %s && %s --run plain.lua --once --json"):format(q(dir), bin))
    assert.equal(0, code, out)
    local first = cjson.decode(out:match("^[^\n]+"))
    assert.equal(1, first.revision)
    assert.matches('"event":"engine.stopped"', out)
  end)

  it("--once lists every failure and exits 1", function()
    H.write(dir .. "/backends.json", '{"servers": [')
    H.write(dir .. "/policy.lua", POLICY:gsub('"echo ran >> commands.log"', '"exit 3"')
      :gsub("creds%.token", "creds.nope"))
    local out, code = once()
    assert.equal(1, code, out)
    assert.matches("reactcfg%-lua: %-%-once failed: 3 problems:\n", out)
    assert.matches("\n  backends: [^\n]*backends%.json:1:%d+: [^\n]*%(source%.error%)", out)
    assert.matches("\n  output token: [^\n]*%(output 'token'%):1: {{ creds%.nope }} is nil", out)
    assert.matches("\n  output upstreams: cannot render: [^\n]*up%.tmpl:2: ", out)
  end)

  it("reports a failing command, and a template stopped by the time budget", function()
    H.write(dir .. "/policy.lua", POLICY:gsub('"echo ran >> commands.log"', '"exit 3"'))
    local out, code = once()
    assert.equal(1, code, out)
    assert.matches("! command%.failed %[upstreams%] sh %-c exit 3: exit status 3", out)
    H.write(dir .. "/up.tmpl", "{% while true do end %}")
    out, code = once()
    assert.equal(1, code, out)
    assert.matches("! output%.error %[upstreams%] [^\n]*up%.tmpl:1: stopped: the policy ran "
      .. "longer than its time budget", out)
  end)

  it("--dry-run shows the text and what it would do, writes and runs nothing", function()
    local out, code = once("--dry-run")
    assert.equal(0, code, out)
    assert.is_nil(read(dir .. "/out/up.conf"))
    assert.is_nil(read(dir .. "/commands.log"))
    assert.matches("%* output%.rendered %[upstreams%] [^\n]*/out/up%.conf: 42 bytes, would "
      .. "change the file; would run: sh %-c echo ran >> commands%.log\nupstream app {\n"
      .. "  server 127%.0%.0%.1:8081;\n}\n==> end of upstreams\n", out)
    -- Secrets print redacted; the comparison with the file uses the real text.
    assert.matches("token=<redacted>\n==> end of token", out)
    assert.not_matches("s3cret", out)
    assert.equal(0, select(2, once()))
    out = once("--dry-run --json")
    local seen = 0
    for line in out:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.event == "output.rendered" then
        seen = seen + 1
        assert.matches("the same as the file", ev.message)
        if ev.output == "upstreams" then assert.matches("^upstream app {", ev.text) end
      end
    end
    assert.equal(2, seen)
  end)

  it("follows the policy: new commits render again, a reloaded policy its new outputs",
    function()
    local out = H.sh(SH .. ([[
cd %s
%s run policy.lua > run.out 2>&1 &
pid=$!
waitfor run.out 'output.written \[token\]' || { kill $pid; exit 1; }
waitfor run.out 'command.finished' || { kill $pid; exit 1; }
printf '%%s' '%s' > backends.json.tmp && mv backends.json.tmp backends.json
waitfor out/up.conf 8083 || { kill $pid; exit 1; }
sed 's/token=/TOKEN: /' policy.lua > policy.lua.tmp && mv policy.lua.tmp policy.lua
waitfor out/token.txt 'TOKEN: s3cret' || { kill $pid; exit 1; }
kill -TERM $pid; wait $pid; echo "status=$?"
]]):format(q(dir), bin, backends(8083)))
    assert.matches("status=0", out)
    local log = read(dir .. "/run.out")
    assert.matches("%[rev 2%] 1 change\n  modified  backends%.servers%[0%]%.port: 8081 %-> "
      .. "8083\n%* output%.written %[upstreams%]", log)
    assert.matches("%* policy%.reloaded", log)
  end)

  it("checks its options", function()
    local out, code = H.sh(bin .. " run policy.lua --once --exec 'true'")
    assert.equal(2, code)
    assert.matches("cannot be combined with %-%-once or %-%-dry%-run", out)
    out, code = H.sh(bin .. " --check x.lua --once")
    assert.equal(2, code)
    assert.matches("go with %-%-run", out)
    out, code = H.sh(bin .. " run policy.lua --exec 'nginx' --exec-signal KILL")
    assert.equal(2, code)
    assert.matches("unknown signal 'KILL'", out)
    out, code = H.sh(bin .. " run policy.lua --exec \"sh -c 'x\"")
    assert.equal(2, code)
    assert.matches("the ' quote is never closed", out)
  end)
end)

describe("reactcfg-lua run --exec", function()
  local dir
  before_each(function()
    dir = H.tmpdir("exec")
    H.write(dir .. "/policy.lua", POLICY:gsub('command = { "sh", "-c", "echo ran >> '
      .. 'commands.log" }', ""))
    H.write(dir .. "/up.tmpl", TEMPLATE)
    H.write(dir .. "/backends.json", backends(8081))
    H.write(dir .. "/creds.json", '{"token": "s3cret"}')
    -- The child: says what it found at start and at each signal; exits 7 on SIGINT.
    H.write(dir .. "/child.sh", [[
#!/bin/sh
log=child.log
echo "start $$ $(grep -c server out/up.conf)" >> $log
trap 'echo "hup $(grep -c server out/up.conf)" >> $log' HUP
trap 'echo "usr1" >> $log' USR1
trap 'echo "int" >> $log; exit 7' INT
trap 'echo "term" >> $log; exit 0' TERM
while :; do sleep 0.05; done
]])
    H.sh("chmod +x " .. dir .. "/child.sh")
  end)
  after_each(function() H.rmdir(dir) end)

  -- Starts `run policy.lua ARGS`, waits for the child, runs `steps` (shell), then sends
  -- SIGINT to reactcfg-lua; returns the status line and the child's log.
  local function supervise(args, steps)
    local out = H.sh(SH .. ([[
cd %s
%s run policy.lua %s > run.out 2>&1 &
pid=$!
waitfor child.log start || { kill $pid; exit 1; }
%s
kill -INT $pid; wait $pid; echo "status=$?"
]]):format(q(dir), bin, args, steps))
    return out, read(dir .. "/child.log") or "", read(dir .. "/run.out") or ""
  end

  local CHANGE = ([[printf '%%s' '%s' > b.tmp && mv b.tmp backends.json
waitfor child.log 'hup 2' || { kill $pid; exit 1; }]]):format(backends(8081, 8082))

  it("starts the child after the first render, sends SIGHUP on a change, passes SIGINT on",
    function()
    local out, log, run = supervise("--exec ./child.sh", CHANGE)
    -- The child saw the rendered file at start, and the new one at SIGHUP; SIGINT went to
    -- it once, and its status (7) is ours.
    assert.matches("status=7", out)
    assert.matches("^start %d+ 1\nhup 2\nint\n$", log)
    assert.matches("%* exec%.started %./child%.sh %(pid %d+%)", run)
    assert.matches("%* exec%.signaled sent SIGHUP to %./child%.sh", run)
    assert.matches("%* exec%.exited %./child%.sh %(pid %d+%) exited with status 7", run)
  end)

  it("sends the signal an output names, or none with signal = false", function()
    H.write(dir .. "/policy.lua", (read(dir .. "/policy.lua"):gsub('path = "out/up.conf",',
      'path = "out/up.conf", signal = "USR1",'):gsub('mode = "0600"', 'signal = false')))
    local out, log = supervise("--exec ./child.sh", ([[printf '%%s' '%s' > b.tmp && mv b.tmp backends.json
waitfor child.log usr1 || { kill $pid; exit 1; }
echo '{"token": "new"}' > c.tmp && mv c.tmp creds.json
waitfor out/token.txt new || { kill $pid; exit 1; }
printf '%%s' '%s' > b.tmp && mv b.tmp backends.json
waitcount child.log usr1 2 || { kill $pid; exit 1; }]]):format(backends(8082),
      backends(8083)))
    assert.matches("status=7", out)
    assert.equal(2, select(2, log:gsub("usr1", "")), log)
    assert.not_matches("hup", log)
  end)

  it("--exec-restart stops the child and starts it again on a change", function()
    local out, log, run = supervise("--exec ./child.sh --exec-restart",
      ([[printf '%%s' '%s' > b.tmp && mv b.tmp backends.json
waitcount child.log start 2 || { kill $pid; exit 1; }]]):format(backends(8081, 8082)))
    assert.matches("status=7", out)
    local first, second = log:match("^start (%d+) 1\nterm\nstart (%d+) 2\nint\n$")
    assert.truthy(first and second and first ~= second, log)
    assert.matches("%* exec%.restarted %./child%.sh %(pid " .. second .. "%)", run)
  end)

  it("ends with the child: its exit status, or 127 when it cannot start", function()
    H.write(dir .. "/quick.sh", "#!/bin/sh\nexit 5\n")
    H.sh("chmod +x " .. dir .. "/quick.sh")
    local out, code = H.sh(("cd %s && %s run policy.lua --exec ./quick.sh"):format(q(dir), bin))
    assert.equal(5, code, out)
    assert.matches("! exec%.exited %./quick%.sh %(pid %d+%) exited with status 5", out)
    out, code = H.sh(("cd %s && %s run policy.lua --exec ./no-such-program"):format(q(dir), bin))
    assert.equal(127, code, out)
    assert.matches("! exec%.error cannot start %./no%-such%-program: no such file", out)
  end)
end)

describe("docs/SIDECAR.md's nginx example", function()
  local NGINX = "/usr/sbin/nginx"
  local have_nginx = io.open(NGINX) ~= nil

  local free_port = require("nginx").free_port

  it("reloads a real nginx when a rendered upstream changes", function()
    if not have_nginx then
      pending("nginx (Debian nginx-light) is not installed")
      return
    end
    local dir = H.tmpdir("nginx-sidecar")
    -- nginx's workers run as nobody when it runs as root: they must reach the directory.
    H.sh("chmod 755 " .. dir)
    local ports = { ["8080"] = free_port(), ["8081"] = free_port(), ["8082"] = free_port() }
    local function ported(s) return (s:gsub("80[8][012]", function(p) return ports[p] end)) end
    local blocks = md.section(md.blocks("docs/SIDECAR.md"), "## Example: nginx")
    local names = {}
    for _, b in ipairs(blocks) do
      if b.name then
        H.write(dir .. "/" .. b.name, ported(b.text))
        names[#names + 1] = b.name
      end
    end
    table.sort(names)
    assert.same({ "backends.json", "nginx.conf", "policy.lua", "upstreams.conf.tmpl" }, names)
    -- The commands as the page gives them: mkdir, the run, the curls and the edit.
    local cmds = {}
    for _, b in ipairs(blocks) do
      if b.lang == "console" then
        for _, c in ipairs(md.commands(b)) do cmds[#cmds + 1] = c end
      end
    end
    assert.equal("mkdir -p tmp", cmds[1].command)
    assert.matches("^reactcfg%-lua run policy%.lua %-%-exec \"nginx ", cmds[2].command)
    assert.matches("^curl ", cmds[3].command)
    assert.equal("backend A", cmds[3].output[1])
    assert.matches("^echo .* > backends%.json$", cmds[4].command)
    assert.equal("backend B", cmds[5].output[1])
    local run = cmds[2].command:gsub("^reactcfg%-lua", bin)
    local curl = "env -u LD_PRELOAD " .. ported(cmds[3].command)
    local out = H.sh(SH .. ([[
cd %s
%s
env -u LD_PRELOAD PATH="/usr/sbin:$PATH" %s > run.out 2>&1 &
pid=$!
waitfor run.out exec.started || { kill $pid; exit 1; }
for i in $(seq 250); do %s > answer 2>/dev/null && grep -q 'backend A' answer && break; sleep 0.02; done
cat answer
%s
for i in $(seq 250); do %s > answer 2>/dev/null && grep -q 'backend B' answer && break; sleep 0.02; done
cat answer
kill -INT $pid; wait $pid; echo "status=$?"
]]):format(q(dir), cmds[1].command, run, curl, ported(cmds[4].command), curl))
    local log = read(dir .. "/run.out") or ""
    H.rmdir(dir)
    assert.matches("backend A\n.*backend B\n.*status=0", out, log)
    assert.matches("%* exec%.signaled sent SIGHUP to nginx", log)
    assert.matches("%* exec%.exited nginx %(pid %d+%) exited with status 0", log)
  end)
end)
