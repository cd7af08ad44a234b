-- SPDX-License-Identifier: MIT (see LICENSE)
-- Sources written in Lua (rc.lua_source): luv on the engine's loop, errors reported,
-- running out of the policy's memory as it starts.
local H = require "spec.lua.helpers"

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

  -- The first source fills the policy's Lua memory (limits.memory) to within a few
  -- bytes and keeps it all; the second then starts with no memory left. Its start makes
  -- Lua objects (the box its emit holds, references): unprotected, the memory error had
  -- no handler and Lua's panic aborted the process. The engine runs in a child process
  -- (lua5.4 with the module), so that an abort fails this test instead of ending busted.
  it("reports running out of the policy's memory as it starts as a source error",
    function()
    local dir = H.tmpdir("lua-source-oom")
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
local keep = {}
local function fill()
  local hold, fmt = {}, {}
  for i = 1, 65536 do hold[i] = false end
  for len = 1, 1000 do fmt[len] = "%0" .. len .. "d" end
  local n = 0
  -- Nothing made here becomes garbage (a full collection must not make room again).
  local function try(len)
    local ok, s = pcall(string.format, fmt[len], n)
    if not ok or n >= 65536 then return false end
    n = n + 1
    hold[n] = s
    return true
  end
  keep.hold, keep.fmt, keep.try = hold, fmt, try
  while try(1000) do end
  for len = 999, 1, -1 do while try(len) do end end
end
return rc.policy { limits = { memory = "4MB" }, components = {
  a_fill = { source = rc.lua_source(function(emit, uv, ctx)
    keep.args = { emit, uv, ctx }
    fill()
    emit(1)
  end) },
  b_victim = { source = rc.lua_source(function(emit) emit(2) end), default = 0 },
} }
]])
    H.write(dir .. "/run.lua", [[
local e = assert(require("reactcfg").engine(arg[1]))
assert(e:start())
for _, ev in ipairs(e:events()) do
  if ev.event == "source.error" then print("error", ev.component, ev.message) end
end
print("values", e:get("a_fill"), e:get("b_victim"))
e:close()
print("closed")
]])
    local out, code = H.sh(("lua5.4 %s/run.lua %s/policy.lua"):format(dir, dir))
    H.rmdir(dir)
    assert.equal(0, code, out)
    -- a_fill started in full; b_victim's start failed for memory, so its default holds.
    assert.matches("error\tb_victim\tlua_source: not enough memory", out, 1, true)
    assert.matches("values\t1\t0\n", out, 1, true)
    assert.matches("closed", out, 1, true)
  end)
end)
