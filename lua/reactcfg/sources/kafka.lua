-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.kafka: rc.kafka { brokers = "127.0.0.1:9092", topic = "app-config",
-- key = "billing" (else every key), format = "json", config = { librdkafka properties },
-- password_env | password_file (SASL), timeout, max_bytes, limits, backoff, circuit }:
-- a topic read as a configuration log (compacted): from the beginning, the latest
-- record per key wins, a tombstone removes its key, then new records as they come.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

-- No token or TLS options of the HTTP sources: librdkafka's own properties (`config`)
-- say how to reach the brokers.
local OPTIONS = { brokers = true, topic = true, key = true, format = true, config = true,
  password_env = true, password_file = true, timeout = true, max_bytes = true,
  limits = true, backoff = true, circuit = true }

-- librdkafka properties the source sets itself or depends on, and properties that hold
-- secrets (a secret stays out of the description, which is the source's identity and
-- may be shown).
local OWNED = { ["bootstrap.servers"] = "brokers", ["metadata.broker.list"] = "brokers",
  ["enable.partition.eof"] = false, ["group.id"] = false, ["client.id"] = false,
  ["reconnect.backoff.ms"] = "backoff", ["reconnect.backoff.max.ms"] = "backoff",
  ["socket.timeout.ms"] = "timeout", ["log.connection.close"] = false,
  ["allow.auto.create.topics"] = false }

function M.constructors.kafka(opts)
  base.check_options("kafka", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("kafka", spec)
end

function M.normalize(src, out, h)
  local brokers = src.brokers
  if type(brokers) == "table" then
    for i, b in ipairs(brokers) do
      if type(b) ~= "string" or b == "" then h.fail("brokers[%d] must be a string", i) end
    end
    brokers = table.concat(brokers, ",")
  end
  if type(brokers) ~= "string" or brokers == "" then
    h.fail("'brokers' must be \"host:port[,host:port...]\" or a list of them")
  end
  if brokers:find("[%s%z]") or brokers:find("@", 1, true) then
    h.fail("'brokers' must be host:port pairs separated by commas, got %q", brokers)
  end
  out.brokers = brokers
  out.topic = base.str(h, src, "topic", true)
  if #out.topic > 249 or not out.topic:match("^[%w._-]+$") then
    h.fail("'topic' must be 1 to 249 characters among letters, digits, '.', '_' and '-'")
  end
  if src.key ~= nil then
    if type(src.key) ~= "string" then h.fail("'key' must be a string") end
    if src.key:find("%z") then h.fail("'key' must not contain a NUL byte") end
  end
  -- `key` is the loader's name for the source identity: the record key travels as
  -- `kafka_key`.
  out.kafka_key = src.key
  out.target = ("kafka %s at %s%s"):format(out.topic, brokers,
    src.key and (" key " .. src.key) or "")
  out.format = base.format(h, src) or "json"
  if src.config ~= nil then
    if type(src.config) ~= "table" then
      h.fail("'config' must be a table of librdkafka properties { [\"name\"] = \"value\" }")
    end
    local config, any = {}, false
    for k, v in pairs(src.config) do
      if type(k) ~= "string" or not k:match("^[%w._-]+$") then
        h.fail("config: %s is not a librdkafka property name", tostring(k))
      end
      if OWNED[k] ~= nil then
        h.fail("config: '%s' is set by the source%s", k,
          OWNED[k] and (" (use '" .. OWNED[k] .. "')") or "")
      end
      if k:find("password", 1, true) or k:find("secret", 1, true) or k:find("%.pem$")
        or k == "sasl.oauthbearer.config" or k:find("^ssl%.key") then
        h.fail("config: '%s' holds a secret, which does not belong in the policy%s", k,
          k == "sasl.password" and " (use password_env or password_file)" or "")
      end
      if type(v) == "number" or type(v) == "boolean" then v = tostring(v) end
      if type(v) ~= "string" or v:find("%z") then
        h.fail("config: the value of '%s' must be a string, a number or a boolean", k)
      end
      config[k], any = v, true
    end
    if any then out.config = config end
  end
  base.remote_options(h, src, out)
  if out.timeout_ms < 1 then h.fail("timeout must be at least 1ms") end
  base.password_options(h, src, out) -- the SASL password (sasl.password)
end

return M
