-- SPDX-License-Identifier: MIT (see LICENSE)
-- source_servers.lua: the servers of `scripts/bench sources`, started by the specs' own
-- helpers (H.redis_server, spec/lua/postgres.lua) so that the bench and the tests start
-- them one way: redis-server on a free port of 127.0.0.1 with keyspace notifications for
-- strings on, PostgreSQL 15 on a unix socket in a temporary directory with
-- examples/policies/postgres-settings/schema.sql loaded into its database `app`.
-- Prints "redis_port=<port>", "pg_conninfo=<string>" and "ready", then waits until its
-- standard input closes (the bench is done, or gone) and stops both, removing their
-- directories. Run from the repository root with the Lua module on LUA_CPATH:
--   LUA_CPATH='build-bench/lua/?.so;;' lua5.4 bench/source_servers.lua
package.path = "./?.lua;" .. package.path
local H = require "spec.lua.helpers"
local P = require "spec.lua.postgres"

-- K$: keyspace events of string commands, which redis-cli SUBSCRIBE needs whatever the
-- engine does (rc.redis adds the classes it needs itself with CONFIG SET).
local redis = H.redis_server("--notify-keyspace-events 'K$'")
local ok, pg = pcall(P.new)
if not ok then
  redis.stop()
  io.stderr:write("source_servers.lua: ", tostring(pg), "\n")
  os.exit(1)
end
local schema = assert(io.open("examples/policies/postgres-settings/schema.sql")):read("a")
pg:sql(schema)

io.write("redis_port=", redis.port, "\n", "pg_conninfo=", pg:conninfo(), "\n", "ready\n")
io.flush()
io.read("a")  -- until the bench closes our input
pg:close()
redis.stop()
