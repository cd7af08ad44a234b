-- SPDX-License-Identifier: MIT (see LICENSE)
-- Formats through the engine and through reactcfg-lua --dump: TOML and YAML files as
-- sources, broken saves keeping the last good value with the exact position, per-source
-- parser limits, and --dump's JSON, tagged JSON and error lines for every format.
local H = require "helpers"
local cjson = require "cjson"

local sh = H.sh

local function errors_of(e) return H.events(e, "source.error") end

describe("formats in the engine", function()
  local e, dir
  after_each(H.cleanup)

  it("reads TOML and YAML files by extension, with TOML date-times as text", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  t = rc.file "app.toml",
  y = rc.file "app.yaml",
  forced = { source = rc.file "settings.conf", format = "yaml" },
} }
]], {
      ["app.toml"] = '[server]\nport = 8080\nhosts = ["a", "b"]\nstarted = 1979-05-27T07:32:00Z\n',
      ["app.yaml"] = 'base: &b {level: info}\nlog:\n  <<: *b\n  file: /var/log/x\nratio: .inf\n',
      ["settings.conf"] = "x: [1, 2]\n",
    })
    assert.equal(8080, e:get("t.server.port"))
    assert.equal("b", e:get("t.server.hosts[1]"))
    assert.equal("1979-05-27T07:32:00Z", e:get("t.server.started"))
    assert.same({ level = "info", file = "/var/log/x" }, e:get("y.log"))
    assert.equal(math.huge, e:get("y.ratio"))
    assert.equal(2, e:get("forced.x[1]"))
  end)

  it("keeps the last good TOML value on a broken save and reports the position", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = { t = rc.file "app.toml" } }
]], { ["app.toml"] = 'name = "a"\n[db]\nport = 1\n' })
    e:commits()
    e:events()
    H.write(dir .. "/app.toml", 'name = "b"\n[db]\nport = = 2\n')
    assert.equal(0, #H.commits(e, 0))
    local errs = errors_of(e)
    assert.equal(1, #errs)
    assert.equal(3, errs[1].line)
    assert.equal(8, errs[1].column)
    assert.equal("a", e:get("t.name"))
    H.write(dir .. "/app.toml", 'name = "b"\n[db]\nport = 2\n')
    local commits = H.commits(e, 1)
    assert.equal(1, #commits)
    assert.same({ "t.db.port", "t.name" },
      { commits[1].changes[1].path, commits[1].changes[2].path })
  end)

  it("applies per-source parser limits", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  small = rc.file("small.json", { limits = { max_bytes = "16B", max_depth = 2 } }),
} }
]], { ["small.json"] = '{"a": [1]}' })
    assert.same({ 1 }, e:get("small.a"))
    e:commits()
    e:events()
    H.write(dir .. "/small.json", '{"a": [[1]]}')
    H.commits(e, 0)
    local errs = errors_of(e)
    assert.equal(1, #errs)
    assert.matches("nesting deeper than 2 levels", errs[1].message)
    H.write(dir .. "/small.json", '{"a": [1, 2, 3, 4, 5, 6]}')
    H.commits(e, 0)
    errs = errors_of(e)
    assert.equal(1, #errs)
    assert.equal("ELIMIT", errs[1].code)
    assert.matches("larger than the limit of 16 bytes", errs[1].message)
    assert.same({ 1 }, e:get("small.a"))
  end)
end)

describe("reactcfg-lua --dump", function()
  local bin = H.bin("reactcfg-lua")
  local dir
  before_each(function() dir = H.tmpdir("dump") end)
  after_each(function() H.rmdir(dir) end)

  local cases = {
    { "a.json", '{"a": [1, 2.5, "x", null, true]}', { a = { 1, 2.5, "x", cjson.null, true } } },
    { "a.yaml", "a: [1, 2.5, x, ~, true]\n", { a = { 1, 2.5, "x", cjson.null, true } } },
    { "a.toml", 'a = [1, 2.5, "x", true]\n', { a = { 1, 2.5, "x", true } } },
    { "a.env", "A=1\nexport B='two'\n", { A = "1", B = "two" } },
  }
  for _, c in ipairs(cases) do
    it("prints " .. c[1] .. " as JSON", function()
      H.write(dir .. "/" .. c[1], c[2])
      local out, code = sh(bin .. " --dump " .. dir .. "/" .. c[1])
      assert.equal(0, code)
      assert.same(c[3], cjson.decode(out))
    end)
  end

  it("prints toml-test's tagged JSON with --tagged", function()
    H.write(dir .. "/t.toml", 'i = 1\nd = 1979-05-27\nf = -inf\n')
    local out, code = sh(bin .. " --dump " .. dir .. "/t.toml --tagged")
    assert.equal(0, code)
    assert.same({ i = { type = "integer", value = "1" },
                  d = { type = "date-local", value = "1979-05-27" },
                  f = { type = "float", value = "-inf" } }, cjson.decode(out))
  end)

  it("prints FILE:LINE:COL: message on stderr and exits 1 for each format", function()
    local bad = {
      { "b.json", '{"a": 1,\n  "b" 2}', ":2:7: " },
      { "b.yaml", "a: 1\nb: [1, 2\n", ":3:1: " },
      { "b.toml", "a = 1\nb = \n", ":2:5: " },
      { "b.env", "A=1\nB\n", ":2:2: " },
    }
    for _, b in ipairs(bad) do
      H.write(dir .. "/" .. b[1], b[2])
      local out, code = sh(bin .. " --dump " .. dir .. "/" .. b[1] .. " 2>&1 >/dev/null")
      assert.equal(1, code, b[1])
      assert.equal(1, select(2, out:gsub("\n", "")), out)
      assert.truthy(out:find(dir .. "/" .. b[1] .. b[3], 1, true), out)
    end
  end)

  it("takes --format over the extension", function()
    H.write(dir .. "/x.conf", "k = 'v'\n")
    local out, code = sh(bin .. " --dump " .. dir .. "/x.conf --format toml")
    assert.equal(0, code)
    assert.same({ k = "v" }, cjson.decode(out))
    _, code = sh(bin .. " --dump " .. dir .. "/x.conf --format ini")
    assert.equal(2, code)
  end)
end)
