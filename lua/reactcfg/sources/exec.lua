-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.sources.exec: rc.exec { command = { "vault-cli", "read", "x" }, interval =
-- "30s", format = "json", timeout = "5s", env = { NAME = "value" }, pass_env = { "HOME" },
-- inherit_env = false, cwd, max_bytes, limits, backoff, circuit }: a program run without
-- a shell every interval, its standard output parsed in `format`.

local base = require "reactcfg.source_base"

local M = { constructors = {} }

-- No token or TLS options: a command takes its credentials from its environment.
local OPTIONS = { command = true, interval = true, format = true, timeout = true,
  env = true, pass_env = true, inherit_env = true, cwd = true, max_bytes = true,
  limits = true, backoff = true, circuit = true }

function M.constructors.exec(opts)
  base.check_options("exec", opts, OPTIONS, true)
  local spec = {}
  for k, v in pairs(opts) do spec[k] = v end
  return base.make("exec", spec)
end

-- A sequence of strings without NUL bytes (`what` names it in messages).
local function string_list(h, v, what, allow_empty_items)
  if type(v) ~= "table" then h.fail("'%s' must be a list of strings", what) end
  local out, n = {}, 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then h.fail("'%s' must be a list of strings (a sequence)", what) end
  for i, s in ipairs(v) do
    if type(s) ~= "string" or (s == "" and not allow_empty_items) then
      h.fail("%s[%d] must be a non-empty string, got %s", what, i,
        type(s) == "string" and '""' or type(s))
    end
    if s:find("%z") then h.fail("%s[%d] must not contain a NUL byte", what, i) end
    out[i] = s
  end
  return out
end

local function check_name(h, name, what)
  if type(name) ~= "string" or not name:match("^[^=%z]+$") then
    h.fail("%s: %s is not a variable name (a non-empty string without '=')", what,
      type(name) == "string" and ("%q"):format(name) or type(name))
  end
end

function M.normalize(src, out, h)
  if src.command == nil then h.fail("'command' is required, a list such as { \"prog\", "
    .. "\"arg\" } (run without a shell)") end
  out.command = string_list(h, src.command, "command", true)
  if #out.command == 0 or out.command[1] == "" then
    h.fail("'command' must name a program first")
  end
  if #out.command > 4096 then h.fail("'command' has more than 4096 arguments") end
  -- Shown to people: the program only (its arguments may carry what should not be).
  out.target = out.command[1]
  out.interval_ms = src.interval ~= nil and h.duration(src.interval, "interval")
    or h.default("interval_ms")
  if out.interval_ms < 10 then h.fail("interval must be at least 10ms") end
  out.format = base.format(h, src) or "json"
  if src.env ~= nil then
    if type(src.env) ~= "table" then
      h.fail("'env' must be a table { NAME = \"value\" }")
    end
    local env, any = {}, false
    for k, v in pairs(src.env) do
      check_name(h, k, "env")
      if type(v) ~= "string" or v:find("%z") then
        h.fail("env: the value of %s must be a string without NUL bytes", k)
      end
      env[k], any = v, true
    end
    if any then out.env = env end
  end
  if src.pass_env ~= nil then
    local names = string_list(h, src.pass_env, "pass_env")
    for _, n in ipairs(names) do check_name(h, n, "pass_env") end
    if #names > 0 then out.pass_env = names end
  end
  if src.inherit_env ~= nil and type(src.inherit_env) ~= "boolean" then
    h.fail("'inherit_env' must be true or false")
  end
  out.inherit_env = src.inherit_env == true
  out.cwd = base.abs_path(h, base.str(h, src, "cwd")) or h.basedir
  base.remote_options(h, src, out)
  if out.timeout_ms < 1 then h.fail("timeout must be at least 1ms") end
end

return M
