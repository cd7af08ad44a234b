-- SPDX-License-Identifier: MIT (see LICENSE)
-- The modes of `scripts/bench sources` still run: reactcfg-bench redis-latency,
-- pg-latency and sources-idle against real servers (started here the way
-- bench/source_servers.lua starts them for the bench), a few writes each. Only what
-- they report is checked (every watcher saw writes, the idle engine held every value and
-- committed nothing); no time is asserted: timing belongs to scripts/bench.
local H = require "spec.lua.helpers"
local P = require "spec.lua.postgres"

-- The words "k=v" of the first line of `out` starting with `prefix`, as a table.
local function line(out, prefix)
  for l in out:gmatch("[^\n]+") do
    if l:sub(1, #prefix + 1) == prefix .. " " then
      local t = {}
      for k, v in l:gmatch("(%S+)=(%S+)") do t[k] = v end
      return t
    end
  end
  error("no line '" .. prefix .. "' in:\n" .. out)
end

local function bench(args)
  local out, code = H.sh(H.bin("reactcfg-bench") .. " " .. args)
  assert.are.equal(0, code, out)
  return out
end

describe("reactcfg-bench source modes", function()
  local redis, pg

  setup(function()
    redis = H.redis_server("--notify-keyspace-events 'K$'")
    pg = P.new()
    local f = assert(io.open("examples/policies/postgres-settings/schema.sql"))
    pg:sql(f:read("a"))
    f:close()
  end)

  teardown(function()
    if pg then pg:close() end
    if redis then redis.stop() end
  end)

  it("redis-latency reports the engine and redis-cli, each having seen the writes",
    function()
      local out = bench("redis-latency --port " .. redis.port .. " --writes 3")
      for _, peer in ipairs { "reactcfg", "redis-cli" } do
        local t = line(out, "redis-latency peer=" .. peer)
        assert.are.equal("3", t.writes)
        -- The engine may fold two notifications into one read; at least the last shows.
        assert.is_true(tonumber(t.seen) >= 1, out)
        assert.matches("^%d+$", t.p50_us)
      end
      assert.are.equal("3", line(out, "redis-latency peer=redis-cli").seen)
      local paired = line(out, "redis-latency paired peer=redis-cli")
      assert.matches("^%-?%d+$", paired.diff_p50_us)
      assert.are.equal('{"i": 3}', (redis.cmd("GET", "bench:latency"):gsub("%s+$", "")))
    end)

  it("pg-latency reports the engine, the libpq listener and psql", function()
    local out = bench(("pg-latency --conninfo '%s' --updates 3"):format(pg:conninfo()))
    for _, peer in ipairs { "reactcfg", "libpq-listen", "libpq-listen+select", "psql" } do
      local t = line(out, "pg-latency peer=" .. peer)
      assert.are.equal("3", t.updates)
      assert.is_true(tonumber(t.seen) >= 1, out)
      assert.matches("^%d+$", t.p99_us)
    end
    assert.are.equal("3", line(out, "pg-latency peer=psql").seen)
    assert.matches("^%-?%d+$", line(out, "pg-latency paired peer=psql").diff_p50_us)
  end)

  it("sources-idle holds every value and commits nothing, attached and on its own thread",
    function()
      local args = ("sources-idle --redis-port %d --pg '%s' --file --seconds 0.3 "
        .. "--settle-ms 0"):format(redis.port, pg:conninfo())
      for mode, extra in pairs { attached = "", thread = " --own-thread" } do
        local t = line(bench(args .. extra), "sources-idle sources=redis,postgres,file")
        assert.are.equal(mode, t.mode)
        assert.are.equal("3/3", t.ready)
        assert.are.equal("0", t.commits)
        assert.matches("^%d+$", t.loop_csw)
      end
    end)
end)
