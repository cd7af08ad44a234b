-- SPDX-License-Identifier: MIT (see LICENSE)
-- secret: secret values stay out of events, the CLI and the Lua module, and out of
-- parse error messages, while the policy and the C getters see them.
local H = require "spec.lua.helpers"

describe("secret", function()
  local e, dir
  after_each(H.cleanup)

  it("redacts secret values in reads and commits but gives them to the policy", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
local seen
return rc.policy {
  components = {
    db = { source = rc.file "db.json", secret = { "password" } },
    token = { source = rc.file "token.txt", format = "text", secret = true },
    echo = { source = rc.file "db.json", depends_on = { "db" },
             update = function(_, ctx) return { len = #ctx.db.password } end },
  },
}
]], { ["db.json"] = '{"user": "u", "password": "hunter2"}', ["token.txt"] = "s3cr3t" })
    assert.same({ user = "u", password = "<redacted>" }, e:get("db"))
    assert.equal("<redacted>", e:get("token"))
    assert.equal("hunter2", e:get("db.password", { reveal = true }))
    assert.equal(7, e:get("echo.len"))
    e:commits()
    H.write(dir .. "/db.json", '{"user": "u", "password": "swordfish"}')
    local commits = H.commits(e, 1)
    for _, ch in ipairs(commits[1].changes) do
      if ch.path == "db.password" then
        assert.is_true(ch.secret)
        assert.equal("<redacted>", ch.new)
        assert.equal("<redacted>", ch.old)
      end
    end
  end)

  it("keeps secret file content out of parse error messages", function()
    e, dir = H.engine([[
local rc = require "reactcfg"
return rc.policy { components = {
  t = { source = rc.file "c.toml", secret = true },
  env = { source = rc.file ".env", secret = true },
} }
]], { ["c.toml"] = 'password = "ok"', [".env"] = "TOKEN=ok" })
    e:events()
    H.write(dir .. "/c.toml", "password = hunter2secret")
    H.write(dir .. "/.env", "hunter2secret")
    local errs = {}
    e:run_until(function()
      for _, ev in ipairs(H.events(e, "source.error")) do errs[#errs + 1] = ev end
      return #errs >= 2
    end, "5s")
    assert.equal(2, #errs)
    for _, ev in ipairs(errs) do
      assert.is_nil(ev.message:find("hunter2", 1, true), ev.message)
      assert.truthy(ev.line > 0)
    end
    assert.matches("invalid value '...'", errs[1].message .. errs[2].message)
    -- A hint of the parser's own survives the redaction readably.
    e:events()
    H.write(dir .. "/c.toml", 'password = "hunter2secret')
    local ev = H.wait_event(e, "source.error")
    assert.is_nil(ev.message:find("hunter2", 1, true), ev.message)
    assert.truthy(ev.message:find("expected '...' before the end of the line (use triple "
      .. "quotes for a multi-line string)", 1, true), ev.message)
  end)

  it("redacts secrets in reactcfg-lua --run --json output", function()
    local d = H.tmpdir("secret-run")
    H.write(d .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  db = { source = rc.file "db.json", secret = { "password" } },
} }
]])
    H.write(d .. "/db.json", '{"user": "u", "password": "hunter2"}')
    local out = H.sh("timeout -s INT 1 " .. H.bin("reactcfg-lua") .. " --run --json "
      .. d .. "/policy.lua")
    H.rmdir(d)
    assert.matches('"path":"db"', out)
    assert.matches('"password":"<redacted>"', out)
    assert.is_nil(out:find("hunter2", 1, true))
  end)
end)
