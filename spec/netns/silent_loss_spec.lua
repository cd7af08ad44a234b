-- SPDX-License-Identifier: MIT (see LICENSE)
-- Servers gone without a word: the spec runs in a network namespace of its own
-- (spec/netns/run.sh) and takes its loopback down, so every peer vanishes with no FIN
-- and no RST, as a host that lost power or network would. A subscribed rc.redis, a
-- connected rc.websocket (its own pings off), rc.postgres listening over TCP and
-- rc.consul in a blocking query are idle then: before, each noticed it after 30 s or
-- more of TCP keepalive (curl's: minutes; PostgreSQL's: the system's two hours); now the
-- kernel's probes (5 s idle, 3 probes 1 s apart) end the connection in about 8 s, the
-- source says so, and once the network is back it reconnects and reads the value again.
local H = require "spec.lua.helpers"
local P = require "spec.lua.postgres"

assert(os.getenv("RC_NETNS") == "1",
  "run through spec/netns/run.sh: this spec takes the loopback down")

local function loopback(up)
  assert(os.execute("env -u LD_PRELOAD ip link set lo " .. (up and "up" or "down")))
end

local QUICK = "backoff = { min = '100ms', max = '1s' }, circuit = false"

-- Takes the network away until `e` reports a source.error (at most 20 s: the kernel's
-- probes take about 8), brings it back, and returns that error's message.
local function lose_network(e)
  e:events()
  loopback(false)
  local ok, err = pcall(H.wait_for, e, "source.error", ".", "20s")
  loopback(true)
  assert(ok, err)
  assert(err, "no source.error within 20 s of the network's loss")
  return err.message
end

-- One case: the server holds {"v": 1} (`set`), an engine follows it through `kind` with
-- `opts`, stays idle longer than the keepalive's 5 s (only probes can tell then), loses
-- the network until the source reports it, and follows {"v": 2} once it is back.
-- `server.stop` runs whatever happened.
local function survives(server, set, kind, opts)
  local ok, err = pcall(function()
    set(1)
    local e = H.engine(H.source_policy("app", kind)(opts .. ", " .. QUICK))
    e:run_until(function() return (e:get("app.v")) == 1 end, "10s")
    assert.equal(1, e:get("app.v"))
    e:run("6s")
    lose_network(e)
    set(2)
    e:run_until(function() return (e:get("app.v")) == 2 end, "30s")
    assert.equal(2, e:get("app.v"))
  end)
  server.stop()
  assert(ok, err)
end

describe("a server gone without a word", function()
  after_each(function()
    loopback(true)
    H.cleanup()
  end)

  it("is noticed by rc.redis, which reads the value again once it is back", function()
    local r = H.redis_server()
    survives(r, function(v) r.cmd("SET", "app:config", ('{"v": %d}'):format(v)) end,
      "redis", ("addr = %q, key = 'app:config'"):format(r.addr))
  end)

  -- A blocking query waits up to `wait` (5 min) for an answer: only the probes tell
  -- (curl's sockets: before, 60 s idle and probes 30 s apart).
  it("is noticed by rc.consul in a blocking query, which reads again once it is back",
    function()
    local s = H.fake_server("consul_server.py")
    survives(s, function(v)
      H.sh(("env -u LD_PRELOAD curl -s -X PUT --data-binary '{\"v\": %d}' '%s/v1/kv/app'")
        :format(v, s.addr))
    end, "consul", ("addr = %q, key = 'app'"):format(s.addr))
  end)

  -- Over TCP (the server also has a unix socket, which psql uses meanwhile); the
  -- keepalive settings are libpq's options here.
  it("is noticed by rc.postgres over TCP, which runs its query again once it is back",
    function()
    local pg = P.new()
    pg:sql([[CREATE TABLE kv (key text PRIMARY KEY, value jsonb);
      INSERT INTO kv VALUES ('v', '0')]])
    survives({ stop = function() pg:close() end },
      function(v) pg:sql(("UPDATE kv SET value = '%d' WHERE key = 'v'"):format(v)) end,
      "postgres", ("conninfo = 'host=127.0.0.1 port=%d dbname=app user=postgres', "
        .. "query = 'SELECT key, value FROM kv', interval = '1h'"):format(pg.port))
  end)

  -- Without pings of its own (ping = false): what the kernel's probes tell is all.
  it("is noticed by rc.websocket, which takes the current document once it is back", function()
    local w = H.ws_server()
    survives(w, function(v) w.set(('{"v": %d}'):format(v)) end, "websocket",
      ("url = %q, ping = false"):format(w.url .. "/live"))
  end)
end)
