-- SPDX-License-Identifier: MIT (see LICENSE)
-- rc.vault against spec/servers/vault_server.py (Vault has no Debian package; the server
-- follows Vault's published API): KV v2 reads, versions, deletion, 403, and keeping the
-- token alive (research notes §3.2).
local H = require "spec.lua.helpers"

-- Starts the fake Vault (root token "root"); returns helpers around it.
local function vault(args)
  local s = H.fake_server("vault_server.py", args)
  local function curl(method, path, body, token)
    return (H.sh(("env -u LD_PRELOAD curl -s -X %s -H 'X-Vault-Token: %s' %s '%s%s'")
      :format(method, token or "root", body and ("--data-binary '" .. body .. "'") or "",
        s.addr, path)))
  end
  function s.write(path, json) return curl("POST", "/v1/secret/data/" .. path,
    '{"data": ' .. json .. '}') end
  function s.delete(path) return curl("DELETE", "/v1/secret/data/" .. path) end
  function s.control(name, spec) return curl("POST", "/_test/" .. name, spec or "{}") end
  --- A new token: { ttl = "2s", explicit_max_ttl = "3s", renewable = true }
  function s.token(opts)
    local parts = {}
    for k, v in pairs(opts) do
      parts[#parts + 1] = ("%q: %s"):format(k, type(v) == "string" and ("%q"):format(v)
        or tostring(v))
    end
    local body = "{" .. table.concat(parts, ",") .. "}"
    local out = curl("POST", "/v1/auth/token/create", body)
    return assert(out:match('"client_token"%s*:%s*"([^"]+)"'), out)
  end
  return s
end

local policy = H.source_policy("db", "vault")

local REVEAL = { reveal = true }

describe("rc.vault", function()
  local srv, e
  after_each(function()
    H.cleanup()
    if srv then srv.stop() end
    srv = nil
  end)

  it("reads a KV v2 secret and detects a new version", function()
    srv = vault()
    srv.write("app/db", '{"user": "app", "password": "pw1"}')
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_TOKEN', "
      .. "interval = '100ms'"):format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_TOKEN", "root")
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    srv.write("app/db", '{"user": "app", "password": "pw2"}')
    assert.truthy(e:run_until(function() return e:get("db.password", REVEAL) == "pw2" end))
    for _, ev in ipairs(e:events()) do
      assert.not_matches("pw2", ev.message)
      assert.not_matches("root", ev.message)
    end
  end)

  it("marks its values secret by default", function()
    srv = vault()
    srv.write("app/db", '{"password": "pw1"}')
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_TOKEN', "
      .. "interval = '100ms'"):format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_TOKEN", "root")
    assert.truthy(e:run_until(function() return e:get("db.password", REVEAL) == "pw1" end))
    assert.equal("<redacted>", e:get("db.password"))
  end)

  it("renews a dynamic secret's lease and reads new credentials before its max TTL",
    function()
    srv = vault("--lease-ttl 1 --lease-max-ttl 2.5")
    e = H.engine(policy(("addr = %q, path = 'database/creds/app', lease = true, "
      .. "token_env = 'RC_SPEC_VAULT_TOKEN'"):format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_TOKEN", "root")
    local first
    assert.truthy(e:run_until(function()
      first = e:get("db.username", REVEAL)
      return first ~= nil
    end))
    assert.equal("<redacted>", e:get("db.password"))
    -- The 1 s lease is renewed (at ~0.67 s, ~1.3 s, ...) until the 2.5 s max TTL is
    -- near; then new credentials are read, before the old ones expire.
    assert.truthy(e:run_until(function()
      return e:get("db.username", REVEAL) ~= first
    end, "6s"))
    assert.truthy(srv.requests("PUT /v1/sys/leases/renew") >= 1)
    assert.equal(0, #H.events(e, "source.error"))
  end)

  it("treats a deleted latest version as absent", function()
    srv = vault()
    srv.write("app/db", '{"user": "app"}')
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_TOKEN', "
      .. "interval = '100ms'"):format(srv.addr), ", default = { user = 'none' }"))
    e:setenv("RC_SPEC_VAULT_TOKEN", "root")
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    srv.delete("app/db")
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "none" end))
    assert.equal(0, #H.events(e, "source.error"))
    srv.write("app/db", '{"user": "again"}')
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "again" end))
  end)

  it("reports 403 for a wrong token, keeps the value, and recovers", function()
    srv = vault()
    srv.write("app/db", '{"user": "app"}')
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_TOKEN', "
      .. "interval = '100ms', backoff = { min = '50ms', max = '100ms' }"):format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_TOKEN", "root")
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    e:events()
    e:setenv("RC_SPEC_VAULT_TOKEN", "not-a-token")
    local errs
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("HTTP 403", errs[1].message)
    -- Vault's own words stay readable, though quoted text of a secret is redacted.
    assert.matches("HTTP 403: permission denied", errs[1].message, 1, true)
    assert.not_matches("not%-a%-token", errs[1].message)
    assert.equal("app", e:get("db.user", REVEAL))
    e:setenv("RC_SPEC_VAULT_TOKEN", "root")
    assert.truthy(e:run_until(function() return #H.events(e, "source.recovered") > 0 end))
  end)

  it("renews its token before it expires", function()
    srv = vault()
    srv.write("app/db", '{"user": "app"}')
    local token = srv.token { ttl = "2s", renewable = true }
    local dir = H.tmpdir("vault-token")
    H.write(dir .. "/token", token .. "\n")
    e = H.engine(policy(("addr = %q, path = 'app/db', token_file = %q, interval = '200ms'")
      :format(srv.addr, dir .. "/token")))
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    e:run("4s")  -- twice the TTL: without renewal the token would be gone
    assert.equal(0, #H.events(e, "source.error"))
    assert.truthy(srv.requests("POST /v1/auth/token/renew-self") >= 2)
    srv.write("app/db", '{"user": "later"}')
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "later" end))
    H.rmdir(dir)
  end)

  it("does not try to renew a token that is not renewable", function()
    srv = vault()
    srv.write("app/db", '{"user": "app"}')
    local token = srv.token { ttl = "1h", renewable = false }
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_TOKEN', "
      .. "interval = '100ms'"):format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_TOKEN", token)
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    e:run("1s")
    assert.truthy(srv.requests("GET /v1/auth/token/lookup-self") >= 1)
    assert.equal(0, srv.requests("POST /v1/auth/token/renew-self"))
    assert.equal(0, #H.events(e, "source.error"))
  end)

  it("reads with a token that may not look itself up: no renewal, said once", function()
    srv = vault()
    srv.write("app/db", '{"user": "app"}')
    local token = srv.token { ttl = "1h", renewable = true }
    -- Its policy leaves out auth/token/lookup-self (least privilege).
    srv.control("fail", '{"status": 403, "count": 0, "path": "/v1/auth/token/lookup-self"}')
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_LP_TOKEN', "
      .. "interval = '100ms', backoff = { min = '50ms', max = '100ms' }"):format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_LP_TOKEN", token)
    local said = {}
    local function states(starting)
      for _, ev in ipairs(e:events()) do
        if ev.event == "source.error" and not starting then
          error("source.error: " .. ev.message)
        end
        if ev.event == "component.state" and ev.message:find("may not look itself up", 1,
          true) then said[#said + 1] = ev end
      end
    end
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    states(true) -- errors of the start, before the token variable was set, are fine
    srv.write("app/db", '{"user": "later"}')
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "later" end))
    e:run("500ms")
    states()
    assert.equal(1, #said)
    assert.matches("permission denied", said[1].message, 1, true)
    assert.equal(1, srv.requests("GET /v1/auth/token/lookup-self"))
    assert.equal(0, srv.requests("POST /v1/auth/token/renew-self"))
  end)

  it("says clearly when the token's max TTL ends", function()
    srv = vault()
    srv.write("app/db", '{"user": "app"}')
    local token = srv.token { ttl = "2s", explicit_max_ttl = "3s", renewable = true }
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_TOKEN', "
      .. "interval = '200ms', backoff = { min = '100ms', max = '500ms' }")
      :format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_TOKEN", token)
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    local expired
    assert.truthy(e:run_until(function()
      for _, ev in ipairs(H.events(e, "source.error")) do
        if ev.message:find("token expired", 1, true) then expired = ev end
      end
      return expired ~= nil
    end, "8s"))
    assert.matches("max TTL", expired.message)
    assert.equal("app", e:get("db.user", REVEAL))
  end)

  it("keeps the value through a sealed Vault and a slow answer, then recovers", function()
    srv = vault()
    srv.write("app/db", '{"user": "app"}')
    e = H.engine(policy(("addr = %q, path = 'app/db', token_env = 'RC_SPEC_VAULT_TOKEN', "
      .. "interval = '100ms', timeout = '300ms', backoff = { min = '50ms', max = '100ms' }")
      :format(srv.addr)))
    e:setenv("RC_SPEC_VAULT_TOKEN", "root")
    assert.truthy(e:run_until(function() return e:get("db.user", REVEAL) == "app" end))
    e:events()
    srv.control("seal", '{"sealed": true}')
    local errs
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("HTTP 503", errs[1].message)
    srv.control("clear")
    assert.truthy(e:run_until(function() return #H.events(e, "source.recovered") > 0 end))
    srv.control("delay", '{"ms": 1000, "count": 1, "path": "/v1/secret/"}')
    assert.truthy(e:run_until(function()
      errs = H.events(e, "source.error")
      return #errs > 0
    end))
    assert.matches("timed out after 300 ms", errs[1].message)
    assert.equal("app", e:get("db.user", REVEAL))
    assert.truthy(e:run_until(function() return #H.events(e, "source.recovered") > 0 end))
  end)

  it("needs a path, and defaults the token to VAULT_TOKEN", function()
    local rc = require "reactcfg"
    assert.has_error(function() rc.vault { pth = "x" } end)
    local loader = require "reactcfg.loader"
    local p = loader.load([[
local rc = require "reactcfg"
return rc.policy { components = { db = { source = rc.vault { path = "app/db" } } } }
]], "policy.lua", "/tmp")
    local out = p.components[1].source
    assert.equal("VAULT_TOKEN", out.token_env)
    assert.equal("secret", out.mount)
    assert.equal(30000, out.interval_ms)
    assert.is_true(out.secret_default)
  end)
end)
