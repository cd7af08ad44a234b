-- SPDX-License-Identifier: MIT (see LICENSE)
-- Sources written in Lua (rc.lua_source): luv on the engine's loop, errors reported.
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
end)
