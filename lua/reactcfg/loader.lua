-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.loader: loads a policy file's text into a fresh sandboxed environment, runs
-- it, and turns what it returns into the normalized description the C engine reads.
-- Every problem becomes an error table { message = "...", line = N } so the engine can
-- report "policy.lua:LINE: message".

local rc = require "reactcfg"
local base = require "reactcfg.source_base"
local constants = require "reactcfg.constants"
local duration = require "reactcfg.duration"
local sandbox = require "reactcfg.sandbox"
local sources = require "reactcfg.sources"

local M = {}

local function fail(line, fmt, ...)
  error({ message = fmt:format(...), line = line }, 0)
end

-- Where each key is assigned in the policy text (`key =` or `["key"] =`, outside
-- comments): key -> ascending list of line numbers. Built once per load, so that
-- finding a key's line costs a binary search instead of a scan of every line (with
-- thousands of components, scanning made loading quadratic).
local function index_lines(lines)
  local index = {}
  local function add(key, i)
    local at = index[key]
    if not at then at = {}; index[key] = at end
    if at[#at] ~= i then at[#at + 1] = i end
  end
  for i, text in ipairs(lines) do
    if text:find("=", 1, true) then
      local code = text:gsub("%-%-.*$", "")
      for key in code:gmatch("%f[%w_]([%w_]+)%s*=") do add(key, i) end
      for key in code:gmatch("%[%s*[\"']([^\"']*)[\"']%s*%]%s*=") do add(key, i) end
    end
  end
  return index
end

-- The line where `key` is assigned nearest to `anchor` (a line inside the component's
-- declaration), so that errors about a key point at it even though Lua keeps no line
-- numbers for table fields. A line after the anchor wins a tie.
local function locate(index, key, anchor)
  local at = index and type(key) == "string" and index[key]
  if not at then return anchor end
  if not anchor then return at[1] end
  local lo, hi = 1, #at + 1                  -- first position with at[pos] >= anchor
  while lo < hi do
    local mid = (lo + hi) // 2
    if at[mid] < anchor then lo = mid + 1 else hi = mid end
  end
  local after, before = at[lo], at[lo - 1]
  if not before then return after end
  if not after then return before end
  return (after - anchor <= anchor - before + 0.5) and after or before
end

local COMPONENT_KEYS = {
  source = true, default = true, format = true, debounce = true, throttle = true,
  on_missing = true, depends_on = true, update = true, condition = true, validate = true,
  transform = true, filter = true, only = true, ignore = true, force = true,
  dynamic = true, secret = true, on_error = true, startup = true, retry = true,
  cache_for = true,
}
local COMPONENT_KEY_LIST = "source, default, format, debounce, throttle, on_missing, "
  .. "depends_on, update, condition, validate, transform, filter, only, ignore, force, "
  .. "dynamic, secret, on_error, startup, retry, cache_for"
local STARTUP = { wait = true, cached = true, default = true, fail = true }
local FUNCTION_KEYS = { "update", "condition", "validate", "transform", "filter" }
local ON_ERROR = { keep = true, default = true }
local FORMATS = base.FORMATS
local MISSING = { default = true, keep = true }

-- Edit distance between two short strings (insertions, deletions, substitutions).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The known key closest to a misspelt one (at most 2 edits away), for "did you mean".
local function nearest(key, known)
  local best, bestd
  for k in pairs(known) do
    local d = distance(key, k)
    if d <= 2 and (not bestd or d < bestd or (d == bestd and k < best)) then
      best, bestd = k, d
    end
  end
  return best
end

local function check_duration(v, what, line)
  local ms, err = duration.parse(v)
  if not ms then fail(line, "%s: %s", what, err) end
  return ms
end

local function normalize_debounce(d, line, what)
  if d == nil or type(d) == "function" then return 0, 0 end -- a function: per change
  if type(d) == "table" then
    for k in pairs(d) do
      if k ~= "quiet" and k ~= "max" then
        fail(line, "%s: unknown key '%s' (expected quiet, max)", what, tostring(k))
      end
    end
    local quiet = check_duration(d.quiet or 0, what .. ".quiet", line)
    local max = d.max and check_duration(d.max, what .. ".max", line)
      or quiet * constants.debounce_max_factor
    if max < quiet then
      fail(line, "%s: max (%gms) is shorter than quiet (%gms)", what, max, quiet)
    end
    return quiet, max
  end
  local quiet = check_duration(d, what, line)
  return quiet, quiet * constants.debounce_max_factor
end

-- throttle = "5s" or { every = "5s", burst = 3 }: at most `burst` updates at once, then
-- one per `every` (token bucket). Returns every_ms (0 = no throttle) and burst.
local function normalize_throttle(t, line, what)
  if t == nil then return 0, 1 end
  local every, burst = t, 1
  if type(t) == "table" then
    for k in pairs(t) do
      if k ~= "every" and k ~= "burst" then
        fail(line, "%s: unknown key '%s' (expected every, burst)", what, tostring(k))
      end
    end
    if t.every == nil then fail(line, "%s: 'every' is required", what) end
    every, burst = t.every, t.burst
    if burst == nil then burst = 1 end
    if type(burst) ~= "number" or burst ~= math.floor(burst) or burst < 1
        or burst >= 2 ^ 31 then
      fail(line, "%s: burst must be a positive integer, got %s", what, tostring(t.burst))
    end
  end
  local ms = check_duration(every, what .. (type(t) == "table" and ".every" or ""), line)
  if ms < 1 then fail(line, "%s: every must be at least 1ms", what) end
  return ms, math.tointeger(burst)
end

local SIZE_UNITS = { [""] = 1, b = 1, kb = 1e3, mb = 1e6, gb = 1e9,
  kib = 1024, mib = 1024 ^ 2, gib = 1024 ^ 3 }
local LIMIT_KEYS = { max_bytes = "size", max_string = "size", max_depth = "count",
  max_nodes = "count" }

-- Parser limits of one source: sizes as numbers of bytes or "10MB", "64KiB"; counts as
-- positive integers. Unset limits keep the engine's defaults.
local function normalize_limits(limits, what, line)
  if limits == nil then return nil end
  if type(limits) ~= "table" then fail(line, "%s: 'limits' must be a table", what) end
  local out = {}
  for k, v in pairs(limits) do
    local kind = LIMIT_KEYS[k]
    if not kind then
      fail(line, "%s: unknown limit '%s' (expected max_bytes, max_string, max_depth, "
        .. "max_nodes)", what, tostring(k))
    end
    local n = v
    if kind == "size" and type(v) == "string" then
      local num, unit = v:lower():match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
      n = num and SIZE_UNITS[unit] and tonumber(num) * SIZE_UNITS[unit]
    end
    if type(n) ~= "number" or n < 1 or n ~= n or n == math.huge then
      fail(line, "%s: limit %s must be a positive %s, got %s", what, k,
        kind == "size" and "size (bytes, or like \"10MB\")" or "integer", tostring(v))
    end
    -- Parsers recurse once per level: deeper than this could exhaust a thread's stack.
    if k == "max_depth" and n > constants.max_parse_depth then
      fail(line, "%s: limit max_depth must be at most %d, got %s", what,
        constants.max_parse_depth, tostring(v))
    end
    out[k] = math.floor(n)
  end
  return out
end

-- A list of component-relative paths (patterns: `*` one segment, `**` any number).
local function normalize_paths(list, name, key, line)
  if list == nil then return nil end
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" then
    fail(line, "component '%s': '%s' must be a list of paths, got %s", name, key, type(list))
  end
  local out = {}
  for i, p in ipairs(list) do
    if type(p) ~= "string" or p == "" then
      fail(line, "component '%s': %s[%d] must be a path such as \"db.host\", got %s",
        name, key, i, type(p) == "string" and '""' or type(p))
    end
    out[i] = p
  end
  if next(list, #list > 0 and #list or nil) ~= nil then
    fail(line, "component '%s': '%s' must be a list of paths (strings)", name, key)
  end
  return out
end

-- `dynamic` / `secret`: a boolean for the whole component, or per path: a list of paths
-- that get the marked setting (`secret = { "password" }`) or a map path -> boolean
-- (`dynamic = { ["server.port"] = false }`). Returns (whole component marked, marked
-- paths) where "marked" is `marked` (false for dynamic, true for secret).
local function normalize_flag_paths(v, marked, name, key, line)
  if v == nil then return false, nil end
  if type(v) == "boolean" then return v == marked, nil end
  if type(v) ~= "table" then
    fail(line, "component '%s': '%s' must be true, false, or a table of paths, got %s",
      name, key, type(v))
  end
  local paths = {}
  for k, flag in pairs(v) do
    if math.type(k) == "integer" then
      if type(flag) ~= "string" or flag == "" then
        fail(line, "component '%s': %s[%d] must be a path, got %s", name, key, k, type(flag))
      end
      if marked == false then
        fail(line, "component '%s': 'dynamic' takes a map of paths, e.g. dynamic = "
          .. "{ [\"%s\"] = false }", name, flag)
      end
      paths[#paths + 1] = flag
    elseif type(k) == "string" and type(flag) == "boolean" then
      if flag == marked then paths[#paths + 1] = k end
    else
      fail(line, "component '%s': '%s' entries must be path = boolean, got %s = %s",
        name, key, tostring(k), type(flag))
    end
  end
  table.sort(paths)
  return false, #paths > 0 and paths or nil
end

-- startup = "wait" | "cached" | "default" | "fail", or { mode = ..., timeout = "5s" }:
-- what start does about a source whose first value comes later (remote sources).
local function normalize_startup(v, name, line)
  if v == nil then return nil, nil end
  local mode, timeout = v, nil
  if type(v) == "table" then
    for k in pairs(v) do
      if k ~= "mode" and k ~= "timeout" then
        fail(line, "component '%s': startup: unknown key '%s' (expected mode, timeout)",
          name, tostring(k))
      end
    end
    mode, timeout = v.mode or "wait", v.timeout
  end
  if not STARTUP[mode] then
    fail(line, "component '%s': startup must be \"wait\", \"cached\", \"default\" or "
      .. "\"fail\", got %s", name, type(mode) == "string" and ("%q"):format(mode)
        or type(mode))
  end
  local ms = timeout and check_duration(timeout, ("component '%s': startup.timeout")
    :format(name), line)
  return mode, ms
end

-- on_error: "keep" (the default: the last good value stays), "default" (fall back to
-- the component's default), or a function(err, ctx) returning one of those, a value to
-- use instead, or nil for "keep".
local function normalize_on_error(v, what, line)
  if v == nil or type(v) == "function" then return v end
  if not ON_ERROR[v] then
    fail(line, "%s: on_error must be \"keep\", \"default\" or a function, got %s", what,
      type(v) == "string" and ("%q"):format(v) or type(v))
  end
  return v
end

-- A string that is equal for two normalized sources exactly when they watch the same
-- thing the same way: a policy reload keeps such a source running.
local function source_key(src)
  local keys = {}
  for k in pairs(src) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = src[k]
    if type(v) == "table" then
      local sub = {}
      for kk, vv in pairs(v) do sub[#sub + 1] = tostring(kk) .. "=" .. tostring(vv) end
      table.sort(sub)
      v = "{" .. table.concat(sub, ",") .. "}"
    end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  return table.concat(parts, ";")
end

-- retry = { min = "1s", max = "1m", circuit = { failures = 5, cooldown = "30s" } | false }:
-- how a source that retries (a remote one) retries after a failure. The same as the
-- source's own `backoff` and `circuit` options, given beside the component's other timing
-- keys; returns a view of the source with them filled in, for its normalizer.
local function with_retry(src, kind, retry, name, line)
  if retry == nil then return src end
  if not kind.flags.retry then
    fail(line, "component '%s': 'retry' applies to remote sources (%s); a %s source is "
      .. "read again on its next change", name, sources.retry_names(), tostring(src.kind))
  end
  if type(retry) ~= "table" then
    fail(line, "component '%s': 'retry' must be a table { min = \"1s\", max = \"1m\", "
      .. "circuit = { failures = 5, cooldown = \"30s\" } }, got %s", name, type(retry))
  end
  for k in pairs(retry) do
    if k ~= "min" and k ~= "max" and k ~= "circuit" then
      fail(line, "component '%s': retry: unknown key '%s' (expected min, max, circuit)",
        name, tostring(k))
    end
  end
  if src.backoff ~= nil or src.circuit ~= nil then
    fail(line, "component '%s': give 'retry' on the component or 'backoff'/'circuit' on "
      .. "its source, not both", name)
  end
  local backoff = (retry.min ~= nil or retry.max ~= nil)
    and { min = retry.min, max = retry.max } or nil
  return setmetatable({ backoff = backoff, circuit = retry.circuit }, { __index = src })
end

-- The helpers a kind's normalizer gets (reactcfg.sources.<kind>.normalize(src, out, h)).
local function helpers(kind, name, line, basedir, where)
  local h = { basedir = basedir, name = name, line = line }
  -- "component 'x': http: message" at the source's line.
  function h.fail(fmt, ...)
    fail(line, "component '%s': %s: " .. fmt, name, kind.name, ...)
  end
  -- "component 'x': message", at the source's line or at `at`.
  function h.component_fail(fmt, ...) fail(line, "component '%s': " .. fmt, name, ...) end
  function h.component_fail_at(at, fmt, ...) fail(at, "component '%s': " .. fmt, name, ...) end
  function h.duration(v, what) return check_duration(v, what, line) end
  function h.limits(v, at)
    return normalize_limits(v, ("component '%s'"):format(name), at or line)
  end
  function h.locate(key) return locate(where, key, line) end
  -- The kind's default for a numeric option (defined once, in C).
  function h.default(key)
    local v = kind.defaults[key]
    if v == nil then error(("%s: no default for '%s'"):format(kind.name, key), 2) end
    return v
  end
  return h
end

local function normalize_source(src, name, line, basedir, where, retry, retry_line)
  if not rc.is_source(src) then
    fail(line, "component '%s': 'source' must be a source such as rc.file \"app.json\" "
      .. "or rc.env \"NAME\", got %s", name, type(src))
  end
  local kind = sources.kinds[src.kind]
  if not kind then
    fail(line, "component '%s': unknown source kind '%s'", name, tostring(src.kind))
  end
  local out = { kind = src.kind }
  kind.normalize(with_retry(src, kind, retry, name, retry_line), out,
    helpers(kind, name, line, basedir, where))
  out.key = source_key(out)
  return out
end

local function normalize_component(name, c, basedir, where, policy_line)
  local anchor = locate(where, name, policy_line)
  if type(c) ~= "table" or rc.is_source(c) then
    if rc.is_source(c) then
      c = { source = c }   -- shorthand: `settings = rc.file "app.json"`
    else
      fail(anchor, "component '%s' must be a table with a 'source', got %s", name, type(c))
    end
  end
  local line = (type(c.source) == "table" and rawget(c.source, "line")) or anchor
  for k in pairs(c) do
    if type(k) ~= "string" then
      fail(line, "component '%s': keys must be strings, got %s", name, type(k))
    elseif not COMPONENT_KEYS[k] then
      local near = nearest(k, COMPONENT_KEYS)
      fail(locate(where, k, line), "component '%s': unknown key '%s' (%s)", name, k,
        near and ("did you mean '%s'?"):format(near) or "expected one of: "
          .. COMPONENT_KEY_LIST)
    end
  end
  if c.source == nil then
    fail(line, "component '%s' has no 'source'", name)
  end
  local out = {
    name = name, line = line,
    source = normalize_source(c.source, name, line, basedir, where,
      c.retry, locate(where, "retry", line)),
    default = c.default,
  }
  if c.format ~= nil then
    if not FORMATS[c.format] then
      fail(locate(where, "format", line), "component '%s': unknown format '%s' "
        .. "(expected json, yaml, toml, dotenv, text)", name, tostring(c.format))
    end
    out.source.format = c.format
  end
  if c.default ~= nil and type(c.default) == "function" then
    fail(locate(where, "default", line), "component '%s': 'default' must be a value, "
      .. "not a function", name)
  end
  out.debounce_ms, out.debounce_max_ms =
    normalize_debounce(c.debounce, locate(where, "debounce", line),
      ("component '%s': debounce"):format(name))
  out.throttle_ms, out.throttle_burst =
    normalize_throttle(c.throttle, locate(where, "throttle", line),
      ("component '%s': throttle"):format(name))
  local om = c.on_missing or "default"
  if not MISSING[om] then
    fail(locate(where, "on_missing", line), "component '%s': on_missing must be "
      .. "\"default\" or \"keep\", got %s", name, tostring(om))
  end
  out.on_missing = om
  for _, k in ipairs(FUNCTION_KEYS) do
    if c[k] ~= nil and type(c[k]) ~= "function" then
      fail(locate(where, k, line), "component '%s': '%s' must be a function, got %s",
        name, k, type(c[k]))
    end
    out[k] = c[k]
  end
  if type(c.debounce) == "function" then out.debounce_fn = c.debounce end
  out.only = normalize_paths(c.only, name, "only", locate(where, "only", line))
  out.ignore = normalize_paths(c.ignore, name, "ignore", locate(where, "ignore", line))
  if c.force ~= nil and type(c.force) ~= "boolean" then
    fail(locate(where, "force", line), "component '%s': 'force' must be true or false, "
      .. "got %s", name, type(c.force))
  end
  out.force = c.force == true
  out.static_all, out.static_paths =
    normalize_flag_paths(c.dynamic, false, name, "dynamic", locate(where, "dynamic", line))
  out.secret_all, out.secret_paths =
    normalize_flag_paths(c.secret, true, name, "secret", locate(where, "secret", line))
  -- Sources of secrets (Vault) are secret unless the component says otherwise.
  if c.secret == nil and out.source.secret_default then out.secret_all = true end
  out.on_error = normalize_on_error(c.on_error, ("component '%s'"):format(name),
    locate(where, "on_error", line))
  out.startup, out.startup_timeout_ms = normalize_startup(c.startup, name,
    locate(where, "startup", line))
  -- cache_for = "1h": fetch once, hold the answer that long, then fetch again.
  if c.cache_for ~= nil then
    local what = ("component '%s': cache_for"):format(name)
    out.cache_for_ms = check_duration(c.cache_for, what, locate(where, "cache_for", line))
    if out.cache_for_ms < 1 then
      fail(locate(where, "cache_for", line), "%s must be at least 1ms", what)
    end
  end
  out.depends_on = {}
  out.depends_line = locate(where, "depends_on", line)
  local deps = c.depends_on
  if type(deps) == "string" then deps = { deps } end
  if deps ~= nil then
    if type(deps) ~= "table" then
      fail(out.depends_line, "component '%s': 'depends_on' must be a list of component "
        .. "names, got %s", name, type(deps))
    end
    for i, d in ipairs(deps) do
      if type(d) ~= "string" then
        fail(out.depends_line, "component '%s': depends_on[%d] must be a component name, "
          .. "got %s", name, i, type(d))
      end
      out.depends_on[#out.depends_on + 1] = d
    end
  end
  return out
end

-- Resolves depends_on names to 1-based indices, rejects unknown names and cycles, and
-- returns a topological order of all components: each component after its dependencies,
-- ties broken by declaration order.
local function order_components(comps)
  local index = {}
  for i, c in ipairs(comps) do index[c.name] = i end
  for _, c in ipairs(comps) do
    c.deps = {}
    for _, d in ipairs(c.depends_on) do
      if not index[d] then
        fail(c.depends_line, "component '%s': depends_on: unknown component '%s'",
          c.name, d)
      end
      if d == c.name then
        fail(c.depends_line, "dependency cycle: %s -> %s", d, d)
      end
      if d == "previous" then
        fail(c.depends_line, "component '%s': depends_on: a dependency cannot be named "
          .. "'previous' (ctx.previous is this component's previous value)", c.name)
      end
      c.deps[#c.deps + 1] = index[d]
    end
  end
  -- Cycles: depth-first, in declaration order, so the reported cycle is stable.
  local state, stack = {}, {}
  local function visit(i)
    state[i] = "active"
    stack[#stack + 1] = i
    for _, d in ipairs(comps[i].deps) do
      if state[d] == "active" then
        local names, from = {}, nil
        for k = 1, #stack do if stack[k] == d then from = k end end
        for k = from, #stack do names[#names + 1] = comps[stack[k]].name end
        names[#names + 1] = comps[d].name
        fail(comps[d].depends_line, "dependency cycle: %s", table.concat(names, " -> "))
      elseif not state[d] then
        visit(d)
      end
    end
    stack[#stack] = nil
    state[i] = "done"
  end
  for i = 1, #comps do if not state[i] then visit(i) end end
  -- Order: repeatedly take the first (in declaration order) component whose
  -- dependencies are all placed: Kahn's algorithm with the ready components in a
  -- min-heap of their declaration index, so n log n rather than n squared.
  local waiting, dependents = {}, {}
  for i, c in ipairs(comps) do
    waiting[i] = #c.deps
    for _, d in ipairs(c.deps) do
      local l = dependents[d]
      if not l then l = {}; dependents[d] = l end
      l[#l + 1] = i
    end
  end
  -- Ready components after the scan position `s` are found by the scan; one that
  -- becomes ready behind it waits in a min-heap. Linear for the usual policy (few
  -- dependencies, declared after what they depend on), n log n at worst.
  local heap = {}
  local function push(i)
    local k = #heap + 1
    heap[k] = i
    while k > 1 and heap[k // 2] > i do
      heap[k], heap[k // 2] = heap[k // 2], i
      k = k // 2
    end
  end
  local function pop()
    local top, last = heap[1], heap[#heap]
    heap[#heap] = nil
    local n, k = #heap, 1
    if n > 0 then
      heap[1] = last
      while true do
        local l, r, m = 2 * k, 2 * k + 1, k
        if l <= n and heap[l] < heap[m] then m = l end
        if r <= n and heap[r] < heap[m] then m = r end
        if m == k then break end
        heap[k], heap[m] = heap[m], heap[k]
        k = m
      end
    end
    return top
  end
  local order, placed, s = {}, {}, 1
  while #order < #comps do
    while s <= #comps and (placed[s] or waiting[s] > 0) do s = s + 1 end
    local i
    if heap[1] and (s > #comps or heap[1] < s) then i = pop() else i = s end
    placed[i] = true
    order[#order + 1] = i
    for _, j in ipairs(dependents[i] or {}) do
      waiting[j] = waiting[j] - 1
      if waiting[j] == 0 and j < s then push(j) end
    end
  end
  return order
end

local POLICY_KEYS = { components = true, on_change = true, on_error = true, limits = true,
  cache = true, outputs = true, line = true, modules = true, history = true,
  reload_backoff = true, admin = true }
local POLICY_KEY_LIST = "components, on_change, on_error, limits, cache, outputs, modules, "
  .. "history, reload_backoff, admin"

local MODULE_KEYS = { paths = true, timeout = true, apply = true }

-- modules = { name = { paths = "db.**" | { ... }, timeout = "5s", apply = fn } }: the
-- policy's reload modules, ordered by the line their apply function starts on.
local function normalize_modules(t, line, index)
  if t == nil then return {} end
  if type(t) ~= "table" then fail(line, "'modules' must be a table of named modules") end
  local out = {}
  for name, m in pairs(t) do
    if type(name) ~= "string" or not name:match("^[%a_][%w_%-]*$") then
      fail(line, "module names must be identifiers, got %q", tostring(name))
    end
    local at = locate(index, name, line)
    if type(m) == "function" then m = { apply = m } end
    if type(m) ~= "table" then
      fail(at, "module '%s' must be a table { paths = ..., apply = function }", name)
    end
    for k in pairs(m) do
      if not MODULE_KEYS[k] then
        fail(at, "module '%s': unknown key '%s' (expected paths, timeout, apply)", name,
          tostring(k))
      end
    end
    if type(m.apply) ~= "function" then
      fail(at, "module '%s': 'apply' must be a function(changes, snapshot, reload)", name)
    end
    local paths = m.paths
    if paths == nil then paths = {} elseif type(paths) == "string" then paths = { paths } end
    if type(paths) ~= "table" then
      fail(at, "module '%s': 'paths' must be a pattern or a list of patterns", name)
    end
    for i, p in ipairs(paths) do
      if type(p) ~= "string" then
        fail(at, "module '%s': paths[%d] must be a pattern such as \"db.**\"", name, i)
      end
    end
    local timeout = m.timeout and check_duration(m.timeout, ("module '%s': timeout")
      :format(name), at)
    if timeout and (timeout < 1 or timeout > 3600000) then
      fail(at, "module '%s': timeout must be between 1ms and 1h", name)
    end
    local info = debug and debug.getinfo and debug.getinfo(m.apply, "S")
    out[#out + 1] = { name = name, paths = paths, timeout_ms = timeout, apply = m.apply,
      line = info and info.linedefined or at or 0 }
  end
  table.sort(out, function(a, b)
    if a.line ~= b.line then return a.line < b.line end
    return a.name < b.name
  end)
  return out
end

-- reload_backoff = { min = "1s", max = "30s" }: after a reload a module refused, the
-- next waits min, then twice as long each time, up to max.
local function normalize_reload_backoff(v, line)
  if v == nil then return nil end
  if type(v) ~= "table" then
    fail(line, "'reload_backoff' must be a table { min = \"1s\", max = \"30s\" }")
  end
  for k in pairs(v) do
    if k ~= "min" and k ~= "max" then
      fail(line, "reload_backoff: unknown key '%s' (expected min, max)", tostring(k))
    end
  end
  local out = { min_ms = v.min and check_duration(v.min, "reload_backoff.min", line),
    max_ms = v.max and check_duration(v.max, "reload_backoff.max", line) }
  if out.min_ms and out.max_ms and out.max_ms < out.min_ms then
    fail(line, "reload_backoff: max is shorter than min")
  end
  return out
end

-- admin = { listen = "127.0.0.1:9090" | "unix:/run/app/reactcfg.sock",
--   token_env = "VAR" }: the admin endpoint, started with the engine; its bearer token is
-- read from the environment variable VAR at start (never written in the policy).
local function normalize_admin(v, line)
  if v == nil then return nil end
  if type(v) ~= "table" then
    fail(line, "'admin' must be a table { listen = \"127.0.0.1:9090\", token_env = ... }")
  end
  for k in pairs(v) do
    if k ~= "listen" and k ~= "token_env" then
      fail(line, "admin: unknown key '%s' (expected listen, token_env)", tostring(k))
    end
  end
  local l = v.listen
  if type(l) ~= "string" or not (l:match("^unix:/.") or l:match("^.+:%d+$")) then
    fail(line, "admin.listen must be \"HOST:PORT\" or \"unix:/PATH\", got %s",
      type(l) == "string" and ("%q"):format(l) or type(l))
  end
  local t = v.token_env
  if t ~= nil and (type(t) ~= "string" or not t:match("^[%a_][%w_]*$")) then
    fail(line, "admin.token_env must name an environment variable, got %s", tostring(t))
  end
  return { listen = l, token_env = t }
end

-- limits = { time = "1s", load_time = "2s", memory = "512MB" }: the time budget of each
-- call into the policy, of loading it, and the Lua state's memory cap.
local function normalize_policy_limits(t, line)
  if t == nil then return nil end
  if type(t) ~= "table" then fail(line, "'limits' must be a table") end
  local out = {}
  for k, v in pairs(t) do
    if k == "time" or k == "load_time" then
      local ms = check_duration(v, "limits." .. k, line)
      if ms < 1 or ms > 3600000 then
        fail(line, "limits.%s must be between 1ms and 1h, got %s", k, tostring(v))
      end
      out[k .. "_ms"] = ms
    elseif k == "memory" then
      local n = v
      if type(v) == "string" then
        local num, unit = v:lower():match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
        n = num and SIZE_UNITS[unit] and tonumber(num) * SIZE_UNITS[unit]
      end
      if type(n) ~= "number" or n < 1048576 or n ~= n or n > 2 ^ 46 then
        fail(line, "limits.memory must be a size of at least 1MiB (like \"64MB\"), got %s",
          tostring(v))
      end
      out.memory = math.floor(n)
    else
      fail(line, "unknown limit '%s' (expected time, load_time, memory)", tostring(k))
    end
  end
  return out
end

-- cache = "dir" or { dir = "dir", secrets = false }: where last-known-good values of
-- remote sources are kept for a start while their servers are down.
local function normalize_cache(v, basedir, line)
  if v == nil then return nil, false end
  local dir, secrets = v, false
  if type(v) == "table" then
    for k in pairs(v) do
      if k ~= "dir" and k ~= "secrets" then
        fail(line, "cache: unknown key '%s' (expected dir, secrets)", tostring(k))
      end
    end
    dir, secrets = v.dir, v.secrets == true
  end
  if type(dir) ~= "string" or dir == "" then
    fail(line, "cache must be a directory path or { dir = ..., secrets = false }")
  end
  if dir:sub(1, 1) ~= "/" then dir = basedir .. "/" .. dir end
  return dir, secrets
end

local NAME_PATTERN = "^[%a_][%w_%-]*$"

-- ==== outputs: files rendered from templates (reactcfg-lua --run, docs/SIDECAR.md) ====

local OUTPUT_KEYS = { template = true, text = true, path = true, mode = true,
  command = true, signal = true }
local OUTPUT_KEY_LIST = "template, text, path, mode, command, signal"
-- Signals an output may send to the --exec child (by name, with or without "SIG").
local SIGNALS = { HUP = true, INT = true, QUIT = true, TERM = true, USR1 = true,
  USR2 = true, WINCH = true, ALRM = true }

local function normalize_output(name, o, basedir, index, anchor)
  local line = locate(index, name, anchor)
  if type(o) ~= "table" then
    fail(line, "output '%s' must be a table { template = \"file\", path = \"file\" }, got %s",
      name, type(o))
  end
  for k in pairs(o) do
    if type(k) ~= "string" or not OUTPUT_KEYS[k] then
      local near = type(k) == "string" and nearest(k, OUTPUT_KEYS)
      fail(locate(index, k, line), "output '%s': unknown key '%s' (%s)", name, tostring(k),
        near and ("did you mean '%s'?"):format(near) or "expected one of: " .. OUTPUT_KEY_LIST)
    end
  end
  local out = { name = name, line = line }
  local function where(k) return locate(index, k, line) end
  local function file(k)
    local v = o[k]
    if type(v) ~= "string" or v == "" then
      fail(where(k), "output '%s': '%s' must be a file name, got %s", name, k,
        v == "" and '""' or type(v))
    end
    return v:sub(1, 1) == "/" and v or basedir .. "/" .. v
  end
  if (o.template == nil) == (o.text == nil) then
    fail(line, "output '%s' needs one of 'template' (a template file) or 'text' (the "
      .. "template itself)%s", name, o.template ~= nil and ", not both" or "")
  end
  if o.template ~= nil then
    out.template = file("template")
  elseif type(o.text) ~= "string" then
    fail(where("text"), "output '%s': 'text' must be a string, got %s", name, type(o.text))
  else
    out.text = o.text
  end
  if o.path == nil then fail(line, "output '%s' has no 'path' (the file to write)", name) end
  out.path = file("path")
  if o.mode ~= nil then
    local m = o.mode
    if type(m) == "string" and m:match("^0?[0-7][0-7][0-7][0-7]?$") then m = tonumber(m, 8) end
    if math.type(m) ~= "integer" or m < 0 or m > 4095 then
      fail(where("mode"), "output '%s': mode must be permissions such as \"0644\" (or "
        .. "420), got %s", name, tostring(o.mode))
    end
    out.mode = m
  end
  if o.command ~= nil then
    local c = o.command
    local ok = type(c) == "table" and #c > 0 and next(c, #c) == nil
    for i = 1, ok and #c or 0 do ok = type(c[i]) == "string" and c[i] ~= "" end
    if not ok then
      fail(where("command"), "output '%s': command must be a list of words such as "
        .. "{ \"nginx\", \"-s\", \"reload\" } (it runs without a shell), got %s", name,
        type(c) == "string" and ("%q"):format(c) or type(c))
    end
    out.command = table.move(c, 1, #c, 1, {})
  end
  local sig = o.signal
  if sig ~= nil and sig ~= false then
    local canon = type(sig) == "string" and sig:upper():gsub("^SIG", "") or nil
    if sig == "restart" then
      out.signal = "restart"
    elseif canon and SIGNALS[canon] then
      out.signal = canon
    else
      local names = {}
      for n in pairs(SIGNALS) do names[#names + 1] = n end
      table.sort(names)
      fail(where("signal"), "output '%s': signal must be a signal name (%s), \"restart\" "
        .. "or false, got %s", name, table.concat(names, ", "),
        type(sig) == "string" and ("%q"):format(sig) or type(sig))
    end
  elseif sig == false then
    out.signal = false
  end
  return out
end

-- outputs = { name = { template | text, path, mode, command, signal }, ... }: a list in
-- declaration order; two outputs may not write the same file.
local function normalize_outputs(outputs, basedir, index, policy_line)
  if outputs == nil then return nil end
  local line = locate(index, "outputs", policy_line)
  if type(outputs) ~= "table" then
    fail(line, "'outputs' must be a table of named outputs, got %s", type(outputs))
  end
  local names, at = {}, {}
  for name in pairs(outputs) do
    if type(name) ~= "string" or not name:match(NAME_PATTERN) then
      fail(line, "output names must be identifiers ([A-Za-z_][A-Za-z0-9_-]*), got %q",
        tostring(name))
    end
    names[#names + 1] = name
    at[name] = locate(index, name, line) or 0
  end
  table.sort(names, function(a, b)
    if at[a] ~= at[b] then return at[a] < at[b] end
    return a < b
  end)
  local list, by_path = {}, {}
  for _, name in ipairs(names) do
    local o = normalize_output(name, outputs[name], basedir, index, line)
    if by_path[o.path] then
      fail(o.line, "outputs '%s' and '%s' both write %s", by_path[o.path], name, o.path)
    end
    by_path[o.path] = name
    list[#list + 1] = o
  end
  return list
end

--- load(text, path, basedir) -> normalized policy; raises { message, line } on error.
function M.load(text, path, basedir)
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local where = index_lines(lines)
  local env = sandbox.env()
  local chunk, err = load(text, "@" .. path, "t", env)
  if not chunk then
    local line, msg = tostring(err):match(":(%d+): (.*)$")
    fail(tonumber(line) or 0, "%s", msg or tostring(err))
  end
  local ok, result = pcall(chunk)
  if not ok then
    if type(result) == "table" then error(result, 0) end
    local line, msg = tostring(result):match("^[^:]*:(%d+): (.*)$")
    fail(tonumber(line) or 0, "%s", msg or tostring(result))
  end
  if type(result) ~= "table" then
    fail(#lines, "the policy must return rc.policy { components = { ... } }, got %s",
      type(result))
  end
  local policy_line = rawget(result, "line") or 1
  for k in pairs(result) do
    if not POLICY_KEYS[k] then
      fail(locate(where, k, policy_line), "unknown policy key '%s' (expected %s)",
        tostring(k), POLICY_KEY_LIST)
    end
  end
  local comps = result.components
  if type(comps) ~= "table" then
    fail(locate(where, "components", policy_line),
      "'components' must be a table of named components")
  end
  if result.on_change ~= nil and type(result.on_change) ~= "function" then
    fail(locate(where, "on_change", policy_line), "'on_change' must be a function")
  end
  local names = {}
  for name in pairs(comps) do
    if type(name) ~= "string" or not name:match(NAME_PATTERN) then
      fail(policy_line, "component names must be identifiers ([A-Za-z_][A-Za-z0-9_-]*), "
        .. "got %q", tostring(name))
    end
    names[#names + 1] = name
  end
  -- Declaration order is what a person reads; Lua tables do not keep it, so order by the
  -- line each component's source was declared on (recorded by its constructor), then by
  -- name.
  -- (Grouped by line and sorted without a comparison function: with thousands of
  -- components a Lua comparison per step was the largest part of loading.)
  local byline, lines_used = {}, {}
  for _, n in ipairs(names) do
    local c = comps[n]
    local src = rc.is_source(c) and c or (type(c) == "table" and rawget(c, "source"))
    local at = rc.is_source(src) and rawget(src, "line") or 0
    local group = byline[at]
    if not group then
      group = {}
      byline[at] = group
      lines_used[#lines_used + 1] = at
    end
    group[#group + 1] = n
  end
  table.sort(lines_used)
  names = {}
  for _, at in ipairs(lines_used) do
    local group = byline[at]
    if #group > 1 then table.sort(group) end
    for _, n in ipairs(group) do names[#names + 1] = n end
  end
  local out = {
    components = {}, on_change = result.on_change,
    on_error = normalize_on_error(result.on_error, "policy",
      locate(where, "on_error", policy_line)),
    limits = normalize_policy_limits(result.limits, locate(where, "limits", policy_line)),
  }
  out.cache_dir, out.cache_secrets = normalize_cache(result.cache, basedir,
    locate(where, "cache", policy_line))
  out.modules = normalize_modules(result.modules, locate(where, "modules", policy_line),
    where)
  local h = result.history
  if h ~= nil and (math.type(h) ~= "integer" or h < 0 or h > 100000) then
    fail(locate(where, "history", policy_line), "'history' must be a number of revisions "
      .. "from 0 to 100000, got %s", tostring(h))
  end
  out.history = h
  out.reload_backoff = normalize_reload_backoff(result.reload_backoff,
    locate(where, "reload_backoff", policy_line))
  out.admin = normalize_admin(result.admin, locate(where, "admin", policy_line))
  out.outputs = normalize_outputs(result.outputs, basedir, where, policy_line)
  for _, name in ipairs(names) do
    out.components[#out.components + 1] =
      normalize_component(name, comps[name], basedir, where, policy_line)
  end
  out.order = order_components(out.components)
  return out
end

return M
