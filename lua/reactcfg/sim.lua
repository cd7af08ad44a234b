-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sim: the policy test bench. One API serves the REPL (as globals), scenario
-- files (`reactcfg-lua test`) and replay of recordings: load a policy on a virtual clock,
-- push values into components as if their sources had, move time, read values and the
-- session's history, and explain what the engine decided and why.
-- Not available to policies (the sandbox only allows reactcfg and its helpers).

local rc = require "reactcfg"

local M = {}

-- ==== showing values ====

local is_array = require("reactcfg.tables").is_array

--- show(v) -> one line of JSON-like text for a value (for messages and explain).
local function show(v, depth)
  depth = depth or 0
  local t = type(v)
  if v == nil then return "nil" end
  if v == rc.null then return "null" end
  if t == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  if t ~= "table" then return tostring(v) end
  if depth > 8 then return "{...}" end
  if next(v) == nil then return getmetatable(v) == rc.array_mt and "[]" or "{}" end
  local parts = {}
  if is_array(v) then
    for i = 1, #v do parts[i] = show(v[i], depth + 1) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local key = tostring(k)
    if not key:match("^[%a_][%w_]*$") then key = ("%q"):format(key) end
    parts[#parts + 1] = key .. " = " .. show(v[k], depth + 1)
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end
M.show = show

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.deep_equal = deep_equal

local function change_line(c)
  if c.kind == "added" then return ("added    %s = %s"):format(c.path, show(c.new)) end
  if c.kind == "removed" then return ("removed  %s (was %s)"):format(c.path, show(c.old)) end
  if c.kind == "touched" then return ("touched  %s (unchanged, forced)"):format(c.path) end
  return ("modified %s: %s -> %s"):format(c.path, show(c.old), show(c.new))
end
M.change_line = change_line

-- ==== a session: one engine on a virtual clock ====

local Session = {}
Session.__index = Session

--- M.session(policy_path [, opts]) -> session | nil, message
--- opts.sources: true to run the policy's real sources (the REPL's default), false to
--- take every value from pushes (scenarios and replay); opts.reload (watch the file).
function M.session(path, opts)
  opts = opts or {}
  local sources = opts.sources
  if sources == nil then sources = false end
  local e, err = rc.engine(path, { simulate = not sources, virtual = true, trace = true,
    reload = opts.reload or false, initial = opts.initial })
  if not e then return nil, err end
  local ok, serr = e:start()
  if not ok then
    e:close()
    return nil, serr
  end
  local s = setmetatable({ e = e, path = path, commits_seen = #e:history(), events = {} },
    Session)
  return s
end

function Session:close() self.e:close() end

-- Drains the engine's event list into the session's (kept for expect_event).
function Session:collect_events()
  for _, ev in ipairs(self.e:events()) do self.events[#self.events + 1] = ev end
  return self.events
end

--- explain([revision]) -> text: the decisions that led to a revision (default: the
--- latest; or, when something happened since, what happened since).
function Session:explain(rev)
  local hist = self.e:history()
  local entry, title
  if rev == nil then
    local pending = self.e:pending_trace()
    if #pending > 0 then
      entry = { trace = pending, changes = {} }
      title = ("since revision %d (no commit yet)"):format(self.e:revision())
    else
      entry = hist[#hist]
    end
  else
    for _, h in ipairs(hist) do if h.revision == rev then entry = h end end
    if not entry then return ("no revision %s in this session"):format(tostring(rev)) end
  end
  if not entry then return "nothing has happened yet" end
  title = title or ("revision %d at +%d ms (%d %s)"):format(entry.revision, entry.at_ms,
    #entry.changes, #entry.changes == 1 and "change" or "changes")
  local out = { title }
  local width = 4
  for _, t in ipairs(entry.trace) do width = math.max(width, #t.component) end
  for _, t in ipairs(entry.trace) do
    local what = t.kind == "decision" and t.message or (t.kind .. ": " .. t.message)
    out[#out + 1] = ("  +%-7s %-" .. width .. "s  %s"):format(t.at_ms .. "ms",
      t.component ~= "" and t.component or "-", what)
  end
  if #entry.changes > 0 then
    out[#out + 1] = "  changes:"
    for _, c in ipairs(entry.changes) do out[#out + 1] = "    " .. change_line(c) end
  end
  return table.concat(out, "\n")
end

-- ==== errors at the caller's line ====

-- This file's chunk name: "@lua/reactcfg/sim.lua" when embedded, a path when loaded from
-- a directory.
local SELF = debug.getinfo(1, "S").source
local SELF_POS = "^" .. SELF:gsub("^@", ""):gsub("%p", "%%%0") .. ":%d+: "

-- Raises `err` as if the user's code had: a failure of a bench call (an unknown
-- component, a bad duration: raised here or by the engine's methods) names the line of
-- the script, scenario or prompt that made the call, not a line of this file. The
-- position added is that of the first function up the stack that is neither in this
-- file nor written in C. A message that already names a place of the user's is kept.
local function raise(err)
  if type(err) ~= "string" then error(err, 0) end
  local msg, ours = err:gsub(SELF_POS, "", 1)
  if ours == 0 and msg:find("^[^\n]-:%d+: ") then error(msg, 0) end
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then error(msg, 0) end
    if info.what ~= "C" and info.source ~= SELF then error(msg, level) end
    level = level + 1
  end
end

local function relay(ok, ...)
  if not ok then raise((...)) end
  return ...
end

-- ==== the API as functions bound to a current session ====

--- M.api(state) -> a table of functions over `state.session` (created by `policy`):
--- policy, reload_policy, reload, rollback, unpin, pinned, revisions, push, push_text,
--- fail, advance, live, now, get, snapshot, components, history, diff, events, explain,
--- revision, commits, expect, expect_commits, expect_event, expect_no_event, close.
function M.api(state, defaults)
  defaults = defaults or {}
  local A = {}
  local function cur(level)
    if not state.session then
      error("no policy loaded: call policy(\"path/to/policy.lua\") first", (level or 2) + 1)
    end
    return state.session
  end

  -- The new session is made before the old one closes: a policy that fails to load
  -- leaves the session in use as it was.
  function A.policy(path, opts)
    opts = opts or {}
    if opts.sources == nil then opts.sources = defaults.sources end
    local s, err = M.session(path, opts)
    if not s then error(err, 2) end
    if state.session then state.session:close() end
    state.session = s
    return s
  end
  -- reload(...) re-reads sources (rc_engine_reload); reload_policy() loads the policy
  -- file again as a fresh session (what reload() did before reload transactions).
  function A.reload_policy()
    local s = cur()
    return A.policy(s.path, { sources = defaults.sources })
  end
  -- A call that fails returns nil, message: raised here at the caller's line.
  local function checked(ok, msg, code)
    if not ok then error(("%s (%s)"):format(msg, code)) end
    return ok
  end
  function A.reload(...) return checked(cur().e:reload(...)) end
  function A.rollback(rev) return checked(cur().e:rollback(rev)) end
  function A.unpin() return checked(cur().e:unpin()) end
  function A.pinned() return cur().e:pinned() end
  function A.revisions() return cur().e:revisions() end
  function A.push(name, value) return cur().e:push(name, value) end
  function A.push_text(name, text, format) return cur().e:push_text(name, text, format) end
  function A.fail(name, message) return cur().e:fail(name, message) end
  function A.advance(d) return cur().e:advance(d) end
  function A.live(d) return cur().e:live(d) end
  function A.now() return cur().e:now() end
  function A.get(path, opts) return cur().e:get(path or "", opts) end
  function A.snapshot(rev) return cur().e:get("", rev and { revision = rev } or nil) end
  function A.revision() return cur().e:revision() end
  function A.components()
    local s = cur()
    local last = {}
    for _, h in ipairs(s.e:history()) do
      for _, c in ipairs(h.changes) do
        last[c.path:match("^[^.%[]+")] = h.revision
      end
    end
    local list = s.e:components()
    for _, c in ipairs(list) do c.changed_in = last[c.name] end
    return list
  end
  function A.history() return cur().e:history() end
  function A.events() return cur():collect_events() end
  function A.explain(rev) return cur():explain(rev) end
  --- diff(a, b): two revisions of this session (numbers), two files (paths), or two
  --- values; returns the changes.
  function A.diff(a, b)
    if math.type(a) == "integer" and math.type(b) == "integer" then
      return cur().e:diff(a, b)
    end
    local function value(v)
      if type(v) ~= "string" then return v end
      local f, err = io.open(v, "rb")
      if not f then error(err, 3) end
      local text = f:read("a")
      f:close()
      local ext = v:match("%.(%w+)$")
      local fmt = (ext == "yml" and "yaml") or (ext == "env" and "dotenv") or ext or "json"
      local parsed, perr = rc.parse(text, fmt)
      if parsed == nil and perr then error(v .. ": " .. perr, 3) end
      return parsed
    end
    return rc.diff(value(a), value(b))
  end
  --- commits() -> number of commits since the last call (or since the policy loaded).
  function A.commits()
    local s = cur()
    local n = #s.e:history()
    local new = n - s.commits_seen
    s.commits_seen = n
    return new
  end

  -- ---- expectations (each raises with the scenario's line on failure) ----
  function A.expect(path, want)
    local got = cur().e:get(path, { reveal = true })
    if not deep_equal(got, want) then
      error(("expected %s = %s, got %s"):format(path, show(want), show(got)), 2)
    end
  end
  function A.expect_commits(n)
    local got = A.commits()
    if got ~= n then
      error(("expected %d %s, got %d"):format(n, n == 1 and "commit" or "commits", got), 2)
    end
  end
  local function find_event(name, pattern)
    local s = cur(3)
    for i, ev in ipairs(s:collect_events()) do
      if ev.event == name and (not pattern or ev.message:find(pattern)) then
        table.remove(s.events, i)
        return ev
      end
    end
  end
  function A.expect_event(name, pattern)
    local ev = find_event(name, pattern)
    if not ev then
      local seen = {}
      for _, e in ipairs(cur().events) do seen[#seen + 1] = e.event .. ": " .. e.message end
      error(("expected a %s event%s; events were:\n    %s"):format(name,
        pattern and (" matching %q"):format(pattern) or "",
        #seen > 0 and table.concat(seen, "\n    ") or "(none)"), 2)
    end
    return ev
  end
  function A.expect_no_event(name)
    local ev = find_event(name)
    if ev then error(("unexpected %s event: %s"):format(name, ev.message), 2) end
  end
  function A.close()
    if state.session then state.session:close() end
    state.session = nil
  end
  for name, f in pairs(A) do
    A[name] = function(...) return relay(pcall(f, ...)) end
  end
  return A
end

-- ==== scenario files: reactcfg-lua test FILE... ====

-- Runs one function as a test; returns true, or false and the error (with traceback
-- trimmed to the scenario file).
local function run_one(fn)
  local ok, err = xpcall(fn, function(m)
    if type(m) ~= "string" then m = tostring(m) end
    return m
  end)
  return ok, err
end

--- M.run_tests(files, out) -> passed, failed: runs each scenario file with the API as
--- globals. A file passes when it runs to the end; `scenario(name, fn)` blocks inside it
--- count one each. Writes one line per result and a final "N passed, M failed" to out.
function M.run_tests(files, out)
  out = out or io.stdout
  local passed, failed = 0, 0
  local function report(ok, name, err)
    if ok then
      passed = passed + 1
      out:write(("ok      %s\n"):format(name))
    else
      failed = failed + 1
      out:write(("FAILED  %s\n        %s\n"):format(name, tostring(err):gsub("\n", "\n        ")))
    end
  end
  for _, file in ipairs(files) do
    local state = {}
    local api = M.api(state, { sources = false })
    local blocks = {}
    api.scenario = function(name, fn) blocks[#blocks + 1] = { name = name, fn = fn } end
    local dir = file:match("^(.*)/[^/]*$") or "."
    -- policy("x.lua") in a scenario file is relative to that file.
    local policy = api.policy
    api.policy = function(path, opts)
      if path:sub(1, 1) ~= "/" then path = dir .. "/" .. path end
      return policy(path, opts)
    end
    local env = setmetatable(api, { __index = _G })
    local chunk, lerr = loadfile(file, "t", env)
    if not chunk then
      report(false, file, lerr)
    else
      local ok, err = run_one(chunk)
      api.close()
      if not ok then
        report(false, file, err)
      elseif #blocks == 0 then
        report(true, file)
      end
      if ok then
        for _, b in ipairs(blocks) do
          local bok, berr = run_one(b.fn)
          api.close()
          report(bok, file .. ": " .. b.name, berr)
        end
      end
    end
  end
  out:write(("%d passed, %d failed\n"):format(passed, failed))
  return passed, failed
end

-- ==== replay of a recording: reactcfg-lua replay FILE POLICY [--compare OTHER] ====

local function read_recording(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local events = {}
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local ev, perr = rc.parse(line, "json")
      if ev == nil then
        f:close()
        return nil, ("%s:%d: %s"):format(path, n, perr)
      end
      if ev.reactcfg_recording == nil then events[#events + 1] = ev end
    end
  end
  f:close()
  return events
end
M.read_recording = read_recording

-- Replays `events` on a fresh session of `policy`; returns the commits as lines and
-- the number of skipped (secret) events.
local function replay_one(events, policy)
  -- What the sources read at start seeds revision 1, as it did when recorded.
  local initial, first = {}, 1
  while events[first] and events[first].initial do
    local ev = events[first]
    if ev.value ~= nil and not ev.secret then initial[ev.component] = ev.value end
    first = first + 1
  end
  local s, err = M.session(policy, { sources = false, initial = initial })
  if not s then return nil, err end
  local skipped = 0
  local lines = {}
  local function take()
    for _, h in ipairs(s.e:history()) do
      if h.revision > (lines.last or 0) then
        lines.last = h.revision
        local cl = {}
        for _, c in ipairs(h.changes) do cl[#cl + 1] = change_line(c) end
        lines[#lines + 1] = { rev = h.revision, at = h.at_ms, changes = cl }
      end
    end
  end
  take()
  for i = first, #events do
    local ev = events[i]
    local wait = (ev.t or 0) - s.e:now()
    if wait > 0 then s.e:advance(("%dms"):format(wait)) end
    if ev.secret then
      skipped = skipped + 1
    elseif ev.error then
      s.e:fail(ev.component, ev.error)
    elseif ev.absent then
      s.e:push(ev.component, nil)
    else
      s.e:push(ev.component, ev.value)
    end
    take()
  end
  -- Let every debounce and throttle still running finish.
  for _ = 1, 100 do
    local before = #s.e:history()
    s.e:advance("1m")
    take()
    if #s.e:history() == before then break end
  end
  s:close()
  return lines, skipped
end

local function print_commits(out, lines)
  for _, l in ipairs(lines) do
    out:write(("[rev %d at +%d ms] %d %s\n"):format(l.rev, l.at, #l.changes,
      #l.changes == 1 and "change" or "changes"))
    for _, c in ipairs(l.changes) do out:write("  " .. c .. "\n") end
  end
end

--- M.replay(recording, policy [, other, out]) -> exit status: prints the commits the
--- policy makes from the recording; with `other`, where the two policies decide
--- differently.
function M.replay(recording, policy, other, out)
  out = out or io.stdout
  local events, err = read_recording(recording)
  if not events then
    io.stderr:write("reactcfg-lua: ", err, "\n")
    return 1
  end
  local a, skipped = replay_one(events, policy)
  if not a then
    io.stderr:write("reactcfg-lua: ", tostring(skipped), "\n") -- (nil, message)
    return 1
  end
  local note = skipped > 0 and (" (%d secret values left out of the recording)"):format(skipped)
    or ""
  if not other then
    out:write(("replayed %d source events from %s on %s%s\n"):format(#events, recording,
      policy, note))
    print_commits(out, a)
    return 0
  end
  local b, berr = replay_one(events, other)
  if not b then
    io.stderr:write("reactcfg-lua: ", tostring(berr), "\n")
    return 1
  end
  out:write(("compared %s and %s on %d source events from %s%s\n"):format(policy, other,
    #events, recording, note))
  local differences = 0
  for i = 1, math.max(#a, #b) do
    local x, y = a[i], b[i]
    local same = x and y and x.at == y.at and table.concat(x.changes, "\n") ==
      table.concat(y.changes, "\n")
    if not same then
      differences = differences + 1
      local function side(mark, name, l)
        if not l then
          out:write(("%s %s: no commit %d\n"):format(mark, name, i))
          return
        end
        out:write(("%s %s: [rev %d at +%d ms] %s\n"):format(mark, name, l.rev, l.at,
          #l.changes == 0 and "no changes" or l.changes[1]))
        for k = 2, #l.changes do out:write(("%s     %s\n"):format(mark, l.changes[k])) end
      end
      side("-", policy, x)
      side("+", other, y)
    end
  end
  out:write(differences == 0 and "the two policies commit the same changes at the same times\n"
    or ("%d %s differ\n"):format(differences, differences == 1 and "commit" or "commits"))
  return differences == 0 and 0 or 3
end

-- ==== the REPL ====

M.repl_state = {}

--- install_repl(G): the API as globals of the REPL, with the policy's real sources
--- running; explain, components and history print instead of returning text.
function M.install_repl(G)
  local api = M.api(M.repl_state, { sources = true })
  for k, f in pairs(api) do G[k] = f end
  G.policy = function(path, opts)
    local s = api.policy(path, opts)
    local names = {}
    for _, c in ipairs(s.e:components()) do names[#names + 1] = c.name end
    io.stdout:write(("%s: %d %s (%s), revision %d\n"):format(path, #names,
      #names == 1 and "component" or "components", table.concat(names, ", "),
      s.e:revision()))
  end
  G.explain = function(rev) io.stdout:write(api.explain(rev), "\n") end
  G.components = function()
    local list = api.components()
    local width = 4
    for _, c in ipairs(list) do width = math.max(width, #c.name) end
    for _, c in ipairs(list) do
      io.stdout:write(("%-" .. width .. "s  %-10s %s%s%s\n"):format(c.name, c.state,
        c.source, c.changed_in and ("  (last changed in revision %d)"):format(c.changed_in)
          or "", c.secret and "  [secret]" or ""))
    end
  end
  G.history = function()
    for _, h in ipairs(api.history()) do
      local first = h.changes[1] and change_line(h.changes[1]) or ""
      io.stdout:write(("rev %-4d +%-8s %d %s  %s%s\n"):format(h.revision, h.at_ms .. "ms",
        #h.changes, #h.changes == 1 and "change " or "changes", first,
        #h.changes > 1 and (" (+%d more)"):format(#h.changes - 1) or ""))
    end
  end
end

--- complete_component(prefix) -> names of the loaded policy's components starting with
--- prefix (the REPL's tab completion inside a string).
function M.complete_component(prefix)
  local out = {}
  local s = M.repl_state.session
  if not s then return out end
  for _, c in ipairs(s.e:components()) do
    if c.name:sub(1, #prefix) == prefix then out[#out + 1] = c.name end
  end
  return out
end

-- ==== the command line: reactcfg-lua test | replay ====

--- main(args) -> exit status, for `reactcfg-lua test FILE...` and
--- `reactcfg-lua replay FILE POLICY [--compare OTHER]` (args[1] is the command).
function M.main(args)
  if args[1] == "test" then
    local files = table.move(args, 2, #args, 1, {})
    if #files == 0 then
      io.stderr:write("usage: reactcfg-lua test FILE...\n")
      return 2
    end
    local passed, failed = M.run_tests(files)
    return (failed == 0 and passed > 0) and 0 or 1
  end
  local rest, other = {}, nil
  local i = 2
  while i <= #args do
    if args[i] == "--compare" then
      other = args[i + 1]
      i = i + 2
    else
      rest[#rest + 1] = args[i]
      i = i + 1
    end
  end
  if #rest ~= 2 or (other == nil and table.concat(args, " "):find("--compare")) then
    io.stderr:write("usage: reactcfg-lua replay RECORDING POLICY [--compare OTHER_POLICY]\n")
    return 2
  end
  return M.replay(rest[1], rest[2], other)
end

return M
