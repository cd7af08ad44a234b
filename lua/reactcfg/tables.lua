-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.tables: helpers a policy's update function needs on config values: deep merge
-- (with an array strategy), deep copy, and get/set by the engine's path syntax
-- (`db.pool.max`, `rules[0].host`, `flags["a.b"]`). Pure Lua; exposed as rc.merge,
-- rc.copy, rc.get and rc.set. None of them modifies its inputs except rc.set.

local M = {}

-- The vocabulary table, for `null` and `array_mt`, which the C loader adds after
-- init.lua has run; read at call time. Set by init.lua through M.bind.
local rc = {}
function M.bind(vocabulary) rc = vocabulary end

local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

-- An array: tagged with rc.array_mt, or a non-empty table whose keys are exactly 1..n.
local function is_array(t)
  if type(t) ~= "table" then return false end
  local mt = getmetatable(t)
  if mt ~= nil and mt == rc.array_mt then return true end
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  return n > 0 and n == #t
end

M.is_array = is_array

local function new_array()
  return rc.array_mt and setmetatable({}, rc.array_mt) or {}
end

-- ==== copy ====

-- `depth` counts the tables on the current path: config values are trees no deeper than
-- the parsers allow, so a deeper path is a cycle (checked once, when it happens, rather
-- than remembering every table on the way).
local MAX_DEPTH = 200
local function find_cycle(v, seen)
  if type(v) ~= "table" then return false end
  if seen[v] then return true end
  seen[v] = true
  for _, x in pairs(v) do if find_cycle(x, seen) then return true end end
  seen[v] = nil
  return false
end
local function too_deep(what, v)
  error(find_cycle(v, {}) and ("%s: the table contains a cycle"):format(what)
    or ("%s: the table is nested more than %d levels deep"):format(what, MAX_DEPTH), 0)
end

local function copy(v, depth)
  if type(v) ~= "table" then return v end
  if depth > MAX_DEPTH then too_deep("rc.copy", v) end
  local out = is_array(v) and new_array() or {}
  for k, x in pairs(v) do out[k] = copy(x, depth + 1) end
  return out
end

--- rc.copy(v) -> a deep copy of v. Arrays keep rc.array_mt; other metatables are not
--- copied. Non-table values are returned as they are.
function M.copy(v)
  local ok, res = pcall(copy, v, 0)
  if not ok then error(res, 2) end
  return res
end

-- ==== merge ====

local merge_value

-- Arrays: "replace" takes `over`; "append" puts over's items after base's; { by = key }
-- merges an item of `over` into the item of `base` with the same value at `key`, and
-- appends the others, keeping base's order first.
local function merge_arrays(base, over, arrays, depth)
  local out = new_array()
  if arrays == "replace" then
    for i = 1, #over do out[i] = copy(over[i], depth + 1) end
    return out
  end
  for i = 1, #base do out[i] = copy(base[i], depth + 1) end
  if arrays == "append" then
    for i = 1, #over do out[#out + 1] = copy(over[i], depth + 1) end
    return out
  end
  local key = arrays.by
  local where = {}
  for i = 1, #out do
    local item = out[i]
    if type(item) == "table" and item[key] ~= nil and where[item[key]] == nil then
      where[item[key]] = i
    end
  end
  for i = 1, #over do
    local item = over[i]
    local at = type(item) == "table" and item[key] ~= nil and where[item[key]]
    if at then
      out[at] = merge_value(out[at], item, arrays, depth + 1)
    else
      out[#out + 1] = copy(item, depth + 1)
      if type(item) == "table" and item[key] ~= nil then where[item[key]] = #out end
    end
  end
  return out
end

-- Merges `over` onto `base` (both possibly nil) into a new value.
function merge_value(base, over, arrays, depth)
  if type(over) ~= "table" then
    if over == nil then return copy(base, depth) end
    return over
  end
  local over_array, base_array = is_array(over), is_array(base)
  if over_array and not base_array then return copy(over, depth) end
  if depth > MAX_DEPTH then too_deep("rc.merge", over) end
  local out
  if over_array then
    out = merge_arrays(base, over, arrays, depth)
  else
    -- Each value is copied once: base's keys that `over` leaves alone, then every key
    -- of `over` merged with base's value (rc.null removes the key).
    out = {}
    local null = rc.null
    local from = type(base) == "table" and not base_array and base or nil
    if from then
      for k, v in pairs(from) do
        if over[k] == nil then out[k] = copy(v, depth + 1) end
      end
    end
    for k, v in pairs(over) do
      if v ~= null or null == nil then
        out[k] = merge_value(from and from[k], v, arrays, depth + 1)
      end
    end
  end
    return out
end

--- rc.merge(base, over [, opts]) -> a new table: `over` deep-merged onto `base`.
--- Objects merge key by key; rc.null in `over` removes the key; other values in `over`
--- win. opts.arrays: "replace" (default), "append", or { by = "key" }.
function M.merge(base, over, opts)
  if base ~= nil and type(base) ~= "table" then
    argerror(1, "merge", "table or nil expected, got " .. type(base))
  end
  if over ~= nil and type(over) ~= "table" then
    argerror(2, "merge", "table or nil expected, got " .. type(over))
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerror(3, "merge", "options table expected, got " .. type(opts))
  end
  local arrays = "replace"
  for k, v in pairs(opts or {}) do
    if k ~= "arrays" then
      error(("merge: unknown option '%s' (expected arrays)"):format(tostring(k)), 2)
    end
    arrays = v
  end
  local by_key = type(arrays) == "table" and type(arrays.by) == "string"
  if by_key then
    for k in pairs(arrays) do by_key = by_key and k == "by" end
  end
  if not (arrays == "replace" or arrays == "append" or by_key) then
    error("merge: opts.arrays must be \"replace\", \"append\" or { by = \"key\" }", 2)
  end
  local ok, res = pcall(merge_value, base or {}, over, arrays, 0)
  if not ok then error(res, 2) end
  return res
end

-- ==== paths ====

-- Splits a path into segments: strings for keys, integers (0-based) for indices, following
-- core/path.c: a bare key is [A-Za-z0-9_-]+, a quoted key is ["..."] with \" and \\,
-- and \xHH for a byte (change paths write control bytes so).
local function parse(path, fname)
  local segs, pos, n = {}, 1, #path
  local function bad(why)
    error(("%s: malformed path '%s' at byte %d (%s)"):format(fname, path, pos, why), 3)
  end
  while pos <= n do
    local c = path:sub(pos, pos)
    if c == "." and pos > 1 then
      pos = pos + 1
      c = path:sub(pos, pos)
      if c == "[" or c == "." or c == "" then bad("a key expected after '.'") end
    elseif c ~= "[" and pos > 1 then
      bad("'.' or '[' expected")
    end
    if c ~= "[" then
      local key = path:match("^[%w_%-]+", pos)
      if not key then bad("a key expected") end
      segs[#segs + 1] = key
      pos = pos + #key
    elseif path:sub(pos + 1, pos + 1) == '"' then
      local i, parts = pos + 2, {}
      while true do
        local ch = path:sub(i, i)
        if ch == "" then bad("unterminated quoted key") end
        if ch == '"' then break end
        if ch == "\\" then
          local nx = path:sub(i + 1, i + 1)
          local hex = nx == "x" and path:match("^%x%x", i + 2)
          if hex then
            parts[#parts + 1] = string.char(tonumber(hex, 16))
            i = i + 4
          elseif nx ~= '"' and nx ~= "\\" then
            bad("only \\\", \\\\ and \\xHH may be escaped")
          else
            parts[#parts + 1] = nx
            i = i + 2
          end
        else
          parts[#parts + 1] = ch
          i = i + 1
        end
      end
      if path:sub(i + 1, i + 1) ~= "]" then bad("']' expected") end
      segs[#segs + 1] = table.concat(parts)
      pos = i + 2
    else
      local digits = path:match("^%d+", pos + 1)
      if not digits or (#digits > 1 and digits:sub(1, 1) == "0") then
        bad("an index without leading zeros expected")
      end
      local index = math.tointeger(tonumber(digits))
      if not index or path:sub(pos + 1 + #digits, pos + 1 + #digits) ~= "]" then
        bad("']' expected")
      end
      segs[#segs + 1] = index
      pos = pos + #digits + 2
    end
  end
  return segs
end

local function check_path(path, fname)
  if type(path) ~= "string" then
    argerror(2, fname, "path string expected, got " .. type(path))
  end
end

--- rc.get(t, path) -> the value at `path` in `t` (0-based indices), or nil when any step
--- is missing or not a table. The empty path is `t` itself.
function M.get(t, path)
  check_path(path, "get")
  local segs = parse(path, "get")
  local v = t
  for _, s in ipairs(segs) do
    if type(v) ~= "table" then return nil end
    if math.type(s) == "integer" then
      if not is_array(v) then return nil end
      v = v[s + 1]
    else
      v = v[s]
    end
  end
  return v
end

--- rc.set(t, path, v) -> t, with the value at `path` replaced by `v` (in place). Missing
--- steps are created (an array before an index, a table before a key); a step that exists
--- but is not a table raises. Indices may address an item or one past the end; setting
--- an array item to nil removes it (later items move down), so arrays never get holes.
function M.set(t, path, v)
  if type(t) ~= "table" then argerror(1, "set", "table expected, got " .. type(t)) end
  check_path(path, "set")
  local segs = parse(path, "set")
  if #segs == 0 then error("set: the path must not be empty", 2) end
  local cur = t
  for i = 1, #segs do
    local s = segs[i]
    local k = s
    if math.type(s) == "integer" then
      if next(cur) ~= nil and not is_array(cur) then
        error(("set: '%s': index [%d] into a table that is not an array")
          :format(path, s), 2)
      end
      if s > #cur then
        error(("set: '%s': index [%d] is past the end (the array has %d items)")
          :format(path, s, #cur), 2)
      end
      k = s + 1
    end
    if i == #segs then
      if v == nil and math.type(s) == "integer" then
        if k <= #cur then table.remove(cur, k) end
      else
        cur[k] = v
      end
    else
      local nx = cur[k]
      if nx == nil then
        if v == nil then return t end  -- removing below a missing step: nothing to do
        nx = math.type(segs[i + 1]) == "integer" and new_array() or {}
        cur[k] = nx
      elseif type(nx) ~= "table" then
        error(("set: '%s': step '%s' holds a %s, not a table"):format(path, tostring(s),
          type(nx)), 2)
      end
      cur = nx
    end
  end
  return t
end

return M
