-- SPDX-License-Identifier: MIT (see LICENSE)
-- kafka.lua: a Kafka cluster for the specs. Debian has no Kafka broker: this starts
-- librdkafka's mock cluster (a Kafka protocol implementation inside librdkafka) in a
-- process of its own (build/kafka-mock, spec/servers/kafka_mock.c) and drives it through
-- two FIFOs. A watchdog kills it once this Lua process is gone.
local H = require "spec.lua.helpers"

local K = {}

local function hex(s)
  if s == nil then return "-" end
  if s == "" then return "" end
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- Starts a mock cluster with `brokers` brokers (default 1). Returns { bootstraps,
--- topic(name, partitions), produce(topic, partition, key, value) (nil value: a
--- tombstone; waits until the cluster has it), down(id), up(id) (-1: every broker),
--- stop() }.
function K.cluster(brokers)
  local k = { dir = H.tmpdir("kafka") }
  assert(select(2, H.sh(("mkfifo '%s/cmd' '%s/ack'"):format(k.dir, k.dir))) == 0)
  local p = io.popen(("unset LD_PRELOAD; %s '%s' %d >'%s/log' 2>&1 & pid=$!; echo $pid; "
    .. "(while kill -0 $PPID 2>/dev/null; do sleep 1; done; kill -9 $pid) "
    .. ">/dev/null 2>&1 </dev/null &"):format(H.bin("kafka-mock"), k.dir, brokers or 1,
    k.dir))
  k.pid = tonumber(p:read("l"))
  p:close()
  k.cmd = assert(io.open(k.dir .. "/cmd", "w"))
  k.cmd:setvbuf("line")
  k.ack = assert(io.open(k.dir .. "/ack", "r"))
  local first = k.ack:read("l")
  k.bootstraps = first and first:match("^LISTENING (%S+)")
  assert(k.bootstraps, "kafka-mock did not start: " .. tostring(first))

  local function call(line)
    k.cmd:write(line, "\n")
    local reply = k.ack:read("l")
    assert(reply == "ok", ("kafka-mock: %s: %s"):format(line:sub(1, 80), tostring(reply)))
  end
  function k.topic(name, partitions) call(("topic %s %d"):format(name, partitions or 1)) end
  function k.produce(topic, partition, key, value)
    call(("produce %s %d %s %s"):format(topic, partition, hex(key), hex(value)))
  end
  function k.down(id) call(("down %d"):format(id or -1)) end
  function k.up(id) call(("up %d"):format(id or -1)) end
  function k.stop()
    if k.cmd then
      pcall(call, "quit")
      k.cmd:close()
      k.ack:close()
      k.cmd = nil
    end
    H.sh(("kill -9 %d 2>/dev/null; while kill -0 %d 2>/dev/null; do sleep 0.02; done")
      :format(k.pid, k.pid))
    H.rmdir(k.dir)
  end
  return k
end

return K
