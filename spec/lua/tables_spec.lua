-- SPDX-License-Identifier: MIT (see LICENSE)
local rc = require "reactcfg"

describe("rc.merge", function()
  it("deep-merges objects into a new table and leaves both inputs untouched", function()
    local base = { db = { host = "a", port = 1 }, name = "x" }
    local over = { db = { port = 2 }, extra = true }
    local out = rc.merge(base, over)
    assert.same({ db = { host = "a", port = 2 }, name = "x", extra = true }, out)
    assert.same({ db = { host = "a", port = 1 }, name = "x" }, base)
    assert.same({ db = { port = 2 }, extra = true }, over)
    assert.are_not.equal(base.db, out.db)
    over.db.port = 3
    assert.equal(2, out.db.port)
  end)

  it("removes keys that are reactcfg.null in over, at any depth", function()
    local out = rc.merge({ a = 1, b = { c = 2, d = 3 } }, { a = rc.null, b = { c = rc.null },
      z = { y = rc.null } })
    assert.same({ b = { d = 3 }, z = {} }, out)
  end)

  it("lets a scalar or a table in over replace a value of another kind", function()
    assert.same({ a = 5 }, rc.merge({ a = { b = 1 } }, { a = 5 }))
    assert.same({ a = { b = 1 } }, rc.merge({ a = 5 }, { a = { b = 1 } }))
    assert.same({ a = { 1, 2 } }, rc.merge({ a = { b = 1 } }, { a = { 1, 2 } }))
  end)

  it("treats nil inputs as empty", function()
    assert.same({ a = 1 }, rc.merge(nil, { a = 1 }))
    assert.same({ a = 1 }, rc.merge({ a = 1 }, nil))
    assert.same({}, rc.merge(nil, nil))
  end)

  it("replaces arrays by default", function()
    local out = rc.merge({ l = { 1, 2, 3 } }, { l = { 9 } })
    assert.same({ l = { 9 } }, out)
    assert.equal(rc.array_mt, getmetatable(out.l))
  end)

  it("appends arrays with arrays = \"append\"", function()
    local out = rc.merge({ l = { 1, 2 } }, { l = { 3 } }, { arrays = "append" })
    assert.same({ 1, 2, 3 }, out.l)
    assert.equal(rc.array_mt, getmetatable(out.l))
  end)

  it("merges array items that share a key with arrays = { by = key }", function()
    local base = { rules = {
      { id = "a", host = "h1", port = 1 },
      { id = "b", host = "h2" },
      "plain",
    } }
    local over = { rules = {
      { id = "b", host = "h9", tls = true },
      { id = "c", host = "h3" },
      { id = "a", port = rc.null },
      "other",
    } }
    local out = rc.merge(base, over, { arrays = { by = "id" } })
    assert.same({
      { id = "a", host = "h1" },
      { id = "b", host = "h9", tls = true },
      "plain",
      { id = "c", host = "h3" },
      "other",
    }, out.rules)
    assert.same({ id = "a", host = "h1", port = 1 }, base.rules[1])
  end)

  it("applies the array strategy at every depth", function()
    local out = rc.merge({ a = { b = { 1 } } }, { a = { b = { 2 } } }, { arrays = "append" })
    assert.same({ a = { b = { 1, 2 } } }, out)
  end)

  it("keeps an empty array tagged with array_mt an array", function()
    local empty = setmetatable({}, rc.array_mt)
    local out = rc.merge({ l = { 1 } }, { l = empty })
    assert.same({}, out.l)
    assert.equal(rc.array_mt, getmetatable(out.l))
  end)

  it("rejects bad arguments and options", function()
    assert.has_error(function() rc.merge(1, {}) end,
      "bad argument #1 to 'merge' (table or nil expected, got number)")
    assert.has_error(function() rc.merge({}, "x") end,
      "bad argument #2 to 'merge' (table or nil expected, got string)")
    assert.has_error(function() rc.merge({}, {}, { array = "append" }) end)
    assert.has_error(function() rc.merge({}, {}, { arrays = "prepend" }) end)
    assert.has_error(function() rc.merge({}, {}, { arrays = { by = 1 } }) end)
  end)

  it("raises on a cyclic table instead of recursing forever", function()
    local t = {}
    t.self = t
    assert.has_error(function() rc.merge({}, t) end)
  end)
end)

describe("rc.copy", function()
  it("copies deeply and keeps the array metatable", function()
    local v = { a = { b = { 1, 2 } }, e = setmetatable({}, rc.array_mt), n = rc.null }
    local c = rc.copy(v)
    assert.same(v, c)
    assert.are_not.equal(v.a, c.a)
    assert.are_not.equal(v.a.b, c.a.b)
    assert.equal(rc.array_mt, getmetatable(c.a.b))
    assert.equal(rc.array_mt, getmetatable(c.e))
    assert.equal(rc.null, c.n)
    c.a.b[1] = 9
    assert.equal(1, v.a.b[1])
  end)

  it("returns non-table values as they are", function()
    assert.equal(5, rc.copy(5))
    assert.equal("s", rc.copy("s"))
    assert.is_nil(rc.copy(nil))
  end)

  it("raises on a cycle", function()
    local t = { x = {} }
    t.x.back = t
    assert.has_error(function() rc.copy(t) end)
  end)
end)

describe("rc.get", function()
  local t = { a = { b = { { c = 1 }, { c = 2 } } }, ["x.y"] = { ['q"z'] = 3 }, n = 0 }

  it("follows keys and 0-based indices", function()
    assert.equal(1, rc.get(t, "a.b[0].c"))
    assert.equal(2, rc.get(t, "a.b[1].c"))
    assert.equal(0, rc.get(t, "n"))
  end)

  it("reads quoted keys with escapes", function()
    assert.equal(3, rc.get(t, '["x.y"]["q\\"z"]'))
  end)

  it("returns nil for a missing step or a step into a non-table", function()
    assert.is_nil(rc.get(t, "a.z.c"))
    assert.is_nil(rc.get(t, "a.b[5].c"))
    assert.is_nil(rc.get(t, "n.m"))
    assert.is_nil(rc.get(nil, "a"))
  end)

  it("returns the table itself for the empty path", function()
    assert.equal(t, rc.get(t, ""))
  end)

  it("raises on a malformed path", function()
    assert.has_error(function() rc.get(t, "a..b") end)
    assert.has_error(function() rc.get(t, "a[01]") end)
    assert.has_error(function() rc.get(t, 'a["x') end)
    assert.has_error(function() rc.get(t, "a b") end)
    assert.has_error(function() rc.get(t, 5) end)
  end)
end)

describe("rc.set", function()
  it("sets a value in place and returns the table", function()
    local t = { a = { b = 1 } }
    assert.equal(t, rc.set(t, "a.b", 2))
    assert.same({ a = { b = 2 } }, t)
  end)

  it("creates missing steps: arrays before indices, tables before keys", function()
    local t = {}
    rc.set(t, 'a.list[0]["k.k"]', true)
    assert.same({ a = { list = { { ["k.k"] = true } } } }, t)
    assert.equal(rc.array_mt, getmetatable(t.a.list))
  end)

  it("appends at one past the end and rejects indices further out", function()
    local t = { l = { 1, 2 } }
    rc.set(t, "l[2]", 3)
    assert.same({ 1, 2, 3 }, t.l)
    assert.has_error(function() rc.set(t, "l[5]", 9) end,
      "set: 'l[5]': index [5] is past the end (the array has 3 items)")
  end)

  it("removes keys and array items with nil, without leaving holes", function()
    local t = { a = 1, l = { "x", "y", "z" } }
    rc.set(t, "a", nil)
    rc.set(t, "l[1]", nil)
    assert.same({ l = { "x", "z" } }, t)
    rc.set(t, "missing.deep", nil)
    assert.same({ l = { "x", "z" } }, t)
  end)

  it("raises when a step holds a non-table value", function()
    local t = { a = 5 }
    assert.has_error(function() rc.set(t, "a.b", 1) end,
      "set: 'a.b': step 'a' holds a number, not a table")
    assert.has_error(function() rc.set(t, "", 1) end, "set: the path must not be empty")
  end)
end)

describe("the helpers inside a policy", function()
  it("are reachable through require 'reactcfg' in the sandbox", function()
    local env = require("reactcfg.sandbox").env()
    local chunk = load([[
      local rc = require "reactcfg"
      local tables = require "reactcfg.tables"
      return rc.get(rc.merge({ a = { b = 1 } }, { a = { c = 2 } }), "a.c"), tables.copy
    ]], "=policy", "t", env)
    local v, f = chunk()
    assert.equal(2, v)
    assert.is_function(f)
  end)
end)
