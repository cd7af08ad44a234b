-- SPDX-License-Identifier: MIT (see LICENSE)
-- Reload transactions from Lua, on the test bench's virtual clock: the policy's modules
-- apply or refuse a reload (a refusal rolls back the modules that applied, and readers
-- never see the refused revision), a module that does not answer times out in virtual
-- time, requested reloads, rollback to a revision with pinning, the backoff after a
-- refusal, and what explain() says about each module.
local H = require "spec.lua.helpers"

local function names(events, prefix)
  local out = {}
  for _, ev in ipairs(events) do
    if ev.event:find(prefix, 1, true) == 1 then
      out[#out + 1] = ev.event .. (ev.module and (" " .. ev.module) or "")
    end
  end
  return out
end

local function find(events, name)
  for _, ev in ipairs(events) do if ev.event == name then return ev end end
end

describe("reload modules in a policy", function()
  local s, dir
  after_each(function()
    if s then s:close() end
    s = nil
    if dir then H.rmdir(dir) end
  end)

  local POOL = [[
local rc = require "reactcfg"
return rc.policy {
  components = { db = rc.file "db.json", app = rc.file "app.json" },
  modules = {
    pool = { paths = "db.pool", timeout = "5s", apply = function(changes, snapshot, reload)
      if snapshot.db.pool > 10 then error("pool size " .. snapshot.db.pool .. " above 10") end
    end },
    cache = { paths = { "db.**", "app.cache" }, apply = function(changes)
      for _, c in ipairs(changes) do
        if c.path == "db.cache" and c.new == "broken" then return false, "cache refused" end
      end
    end },
  },
}
]]

  it("runs the modules whose paths changed, in the order they are written", function()
    s, dir = H.bench_session(POOL)
    s.e:push("db", { pool = 4 })
    s.e:push("app", { name = "x" })
    s.e:events()
    s.e:push("db", { pool = 8 })
    assert.equal(8, s.e:get("db.pool"))
    local ev = s.e:events()
    assert.same({ "module.started pool", "module.completed pool", "module.started cache",
      "module.completed cache" }, names(ev, "module."))
    local done = find(ev, "reload.completed")
    assert.equal("source:db", done.trigger)
    assert.equal(1, done.changes)
    assert.equal(s.e:revision(), done.revision)
    -- A change no module's paths cover runs none.
    s.e:push("app", { name = "y" })
    assert.same({}, names(s.e:events(), "module."))
    assert.matches("module pool: applied", s:explain(s.e:revision() - 1))
  end)

  it("refuses a reload when a module raises: nothing is committed, the value stays", function()
    s, dir = H.bench_session(POOL)
    s.e:push("db", { pool = 4 })
    local rev = s.e:revision()
    s.e:events()
    s.e:push("db", { pool = 50 })
    assert.equal(rev, s.e:revision())
    assert.equal(4, s.e:get("db.pool"))
    local ev = s.e:events()
    local failed = find(ev, "module.failed")
    assert.equal("pool", failed.module)
    assert.matches("pool size 50 above 10", failed.message)
    assert.equal("EREFUSED", failed.code)
    -- The reason reaches reload.failed too (it was lost: copied onto itself).
    assert.matches("pool size 50 above 10", find(ev, "reload.failed").message)
    assert.is_nil(find(ev, "reload.completed"))
    assert.matches("module pool: refused %(.*pool size 50 above 10", s:explain())
  end)

  it("rolls back the modules that applied when a later one refuses", function()
    s, dir = H.bench_session(POOL)
    s.e:push("db", { pool = 4, cache = "lru" })
    s.e:events()
    s.e:push("db", { pool = 6, cache = "broken" })
    assert.equal(4, s.e:get("db.pool"))
    local ev = s.e:events()
    assert.same({ "module.started pool", "module.completed pool", "module.started cache",
      "module.failed cache", "module.started pool", "module.completed pool" },
      names(ev, "module."))
    local rb = find(ev, "reload.rolledback")
    assert.truthy(rb, "no reload.rolledback")
    local text = s:explain()
    assert.matches("module cache: refused %(cache refused%)", text)
    assert.matches("module pool: rolled back", text)
  end)

  it("times out a module that returned rc.PENDING and never answered, in virtual time",
    function()
    s, dir = H.bench_session([[
local rc = require "reactcfg"
return rc.policy {
  components = { db = rc.file "db.json" },
  modules = { slow = { paths = "db.**", timeout = "5s", apply = function(_, snapshot)
    if snapshot.db.pool == 2 then return rc.PENDING end
  end } },
}
]])
    s.e:push("db", { pool = 1 })
    local rev = s.e:revision()
    s.e:events()
    s.e:push("db", { pool = 2 })
    s.e:advance("4s")
    assert.equal(rev, s.e:revision())
    assert.same({ "module.started slow" }, names(s.e:events(), "module."))
    s.e:advance("2s")
    local ev = s.e:events()
    local failed = find(ev, "module.failed")
    assert.matches("no answer within its timeout of 5000 ms", failed.message)
    assert.equal("ETIMEDOUT", failed.code)
    assert.truthy(find(ev, "reload.failed"))
    assert.equal(1, s.e:get("db.pool"))
  end)

  it("waits reload_backoff after a refusal, in virtual time, then applies the next", function()
    s, dir = H.bench_session([[
local rc = require "reactcfg"
return rc.policy {
  components = { db = rc.file "db.json" },
  reload_backoff = { min = "2s", max = "8s" },
  modules = { pool = { paths = "db.pool", apply = function(_, snapshot)
    if snapshot.db.pool > 10 then return false, "too big" end
  end } },
}
]])
    s.e:push("db", { pool = 1 })
    s.e:push("db", { pool = 50 })
    local rev = s.e:revision()
    s.e:push("db", { pool = 3 })
    assert.equal(rev, s.e:revision(), "the next reload waits for the backoff")
    s.e:advance("1900ms")
    assert.equal(1, s.e:get("db.pool"))
    s.e:advance("200ms")
    assert.equal(3, s.e:get("db.pool"))
  end)
end)

describe("requested reloads, rollback and pinning from Lua", function()
  local s, dir
  after_each(function()
    if s then s:close() end
    s = nil
    if dir then H.rmdir(dir) end
  end)

  it("e:reload applies a value held by debounce at once, as a reload with trigger request",
    function()
    s, dir = H.bench_session([[
local rc = require "reactcfg"
return rc.policy { components = {
  db = { source = rc.file "db.json", debounce = "1h" },
  app = { source = rc.file "app.json", debounce = "1h" },
} }
]])
    s.e:push("db", { pool = 1 })
    s.e:push("app", { v = 1 })
    s.e:advance("2h")
    local rev = s.e:revision()
    s.e:push("db", { pool = 2 })
    s.e:push("app", { v = 2 })
    assert.equal(rev, s.e:revision())
    s.e:events()
    assert.is_true(s.e:reload("db"))
    assert.equal(2, s.e:get("db.pool"))
    assert.equal(1, s.e:get("app.v"), "only the named component")
    local done = find(s.e:events(), "reload.completed")
    assert.equal("request", done.trigger)
    assert.is_true(s.e:reload())
    assert.equal(2, s.e:get("app.v"))
    local ok, msg, code = s.e:reload({ "db", "nope" })
    assert.is_nil(ok)
    assert.equal("no component named 'nope'", msg)
    assert.equal("ENOTFOUND", code)
    assert.has_error(function() s.e:reload(42) end,
      "reload: component names expected, got number")
  end)

  it("does not wait for a source with nothing to read again (rc.lua_source)", function()
    -- Before: the Lua source's empty rescan never answered, and every request waited
    -- 10 s (here: until virtual time moved) before it ran.
    dir = H.tmpdir("reload-lua-source")
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  s = { source = rc.lua_source(function(emit) emit({ v = 1 }) end), debounce = "1h" },
} }
]])
    local rc = require "reactcfg"
    local e = assert(rc.engine(dir .. "/policy.lua", { virtual = true, reload = false }))
    s = { close = function() e:close() end }
    assert(e:start())
    e:advance("2h")
    assert.equal(1, e:get("s.v"))
    e:push("s", { v = 2 })
    assert.equal(1, e:get("s.v"))
    e:events()
    assert.is_true(e:reload())
    assert.equal(2, e:get("s.v"))
    assert.truthy(find(e:events(), "reload.completed"))
  end)

  it("rolls back to a revision of the history, pins it, and unpin applies the latest", function()
    s, dir = H.bench_session([[
local rc = require "reactcfg"
return rc.policy { components = { db = rc.file "db.json" }, history = 3 }
]])
    for i = 1, 5 do s.e:push("db", { pool = i }) end
    local revs = s.e:revisions()
    assert.equal(3, #revs, "history = 3 keeps three")
    local last = revs[#revs].revision
    assert.equal(s.e:revision(), last)
    local target = revs[1].revision
    local ok, msg, code = s.e:rollback(target - 1)
    assert.is_nil(ok)
    assert.equal("ENOTFOUND", code)
    assert.matches("not in the history", msg)
    s.e:events()
    assert.is_true(s.e:rollback(target))
    assert.equal(last + 1, s.e:revision())
    assert.equal(3, s.e:get("db.pool"))
    assert.is_true(s.e:pinned())
    local ev = s.e:events()
    assert.equal("rollback", find(ev, "reload.completed").trigger)
    assert.equal(last + 1, find(ev, "engine.pinned").revision)
    -- Pinned: a source change is recorded, not applied.
    s.e:push("db", { pool = 9 })
    assert.equal(3, s.e:get("db.pool"))
    assert.is_true(s.e:unpin())
    assert.is_false(s.e:pinned())
    assert.equal(9, s.e:get("db.pool"))
    assert.truthy(find(s.e:events(), "engine.unpinned"))
  end)

  it("a rollback a module refuses leaves everything as it was", function()
    s, dir = H.bench_session([[
local rc = require "reactcfg"
local applied = 0
return rc.policy {
  components = { db = rc.file "db.json" },
  modules = { guard = { paths = "db.**", apply = function(changes, snapshot, reload)
    applied = applied + 1
    if applied > 2 and snapshot.db.pool == 1 then return false, "not 1 again" end
  end } },
}
]])
    s.e:push("db", { pool = 1 })
    local first = s.e:revision()
    s.e:push("db", { pool = 2 })
    local rev = s.e:revision()
    local ok, msg, code = s.e:rollback(first)
    assert.is_nil(ok)
    assert.equal("EREFUSED", code)
    assert.matches("not 1 again", msg)
    assert.equal(rev, s.e:revision())
    assert.equal(2, s.e:get("db.pool"))
    assert.is_false(s.e:pinned())
  end)

  it("the bench's reload, rollback and unpin raise at the caller's line", function()
    local sim = require "reactcfg.sim"
    dir = H.tmpdir("bench-api")
    H.write(dir .. "/policy.lua", 'local rc = require "reactcfg"\n'
      .. 'return rc.policy { components = { db = { source = rc.file "db.json",\n'
      .. '  debounce = "1h" } } }\n')
    local state = {}
    local api = sim.api(state)
    api.policy(dir .. "/policy.lua")
    api.push("db", { pool = 1 })
    api.reload()
    assert.equal(1, api.get("db.pool"))
    api.push("db", { pool = 2 })
    api.reload("db")
    assert.equal(2, api.get("db.pool"))
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(api.rollback, 99)
    assert.is_false(ok)
    assert.matches("reload_modules_spec.lua:" .. line .. ": revision 99 is not in the "
      .. "history.*%(ENOTFOUND%)", err)
    api.rollback(2)
    assert.is_true(api.pinned())
    assert.equal(1, api.get("db.pool"))
    api.unpin()
    assert.equal(2, api.get("db.pool"))
    local revs = api.revisions()
    assert.equal(api.revision(), revs[#revs].revision)
    assert.equal("unpin", revs[#revs].trigger)
    api.close()
    s = nil
  end)
end)
