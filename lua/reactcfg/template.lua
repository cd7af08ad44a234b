-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.template: the small template language of a policy's `outputs`
-- (docs/SIDECAR.md). A template is text with {{ expression }}, {% statements %} and
-- {# comments #}; it compiles to one Lua chunk whose lines are the template's lines, so
-- an error names the template's file and line. It runs in its own environment: the
-- configuration's components by name, a few helpers, no I/O and no globals to set.

local rc = require "reactcfg"

local M = {}

-- ==== values into text ====

local null, array_mt = rc.null, rc.array_mt

-- Keys in a stable order: numbers first, then strings, each ascending.
local function before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, before)
  return keys
end

local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

--- json(v) -> compact JSON text of v, object keys sorted (so a rendering is the same
--- bytes every time the values are).
local function json(v, depth)
  depth = depth or 0
  if depth > 100 then error("json: nested more than 100 levels (a cycle?)", 2) end
  local t = type(v)
  if v == nil or v == null then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return ("%.17g"):format(v)
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      return ESCAPES[c] or ("\\u%04x"):format(c:byte())
    end) .. '"'
  end
  if t ~= "table" then error("json: cannot encode a " .. t, 2) end
  local parts = {}
  if is_array(v) then
    for i = 1, #v do parts[i] = json(v[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for _, k in ipairs(sorted_keys(v)) do
    parts[#parts + 1] = json(tostring(k)) .. ":" .. json(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end
M.json = json

-- What {{ expr }} inserts. `what` is the expression's text, for messages; level 2 is the
-- template line that holds the tag.
local function text_of(v, what)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" then return tostring(v) end
  if v == nil or v == null then
    error(("{{ %s }} is %s (write {{ %s or \"\" }} for an optional value)")
      :format(what, v == nil and "nil" or "null", what), 2)
  end
  if t == "table" then
    error(("{{ %s }} is a table: use json(...), join(...) or a {%% for %%} loop")
      :format(what), 2)
  end
  error(("{{ %s }} is a %s"):format(what, t), 2)
end

-- ==== helpers every template sees ====

local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error(("'%s' is read-only"):format(name), 2) end,
    __metatable = name,
  })
end

local function copy(t, keys)
  local out = {}
  for _, k in ipairs(keys) do out[k] = t[k] end
  return out
end

-- Pure functions only: a template is a function of the configuration.
local HELPERS = {
  ipairs = ipairs, pairs = pairs, next = next, select = select, type = type,
  tostring = tostring, tonumber = tonumber, error = error, assert = assert,
  pcall = pcall, rawget = rawget, rawlen = rawlen, rawequal = rawequal,
  string = readonly(copy(string, { "byte", "char", "find", "format", "gmatch", "gsub",
    "len", "lower", "match", "rep", "reverse", "sub", "upper" }), "string"),
  table = readonly(copy(table, { "concat", "insert", "move", "pack", "remove", "sort",
    "unpack" }), "table"),
  math = readonly(copy(math, { "abs", "ceil", "floor", "fmod", "huge", "max",
    "maxinteger", "min", "mininteger", "modf", "tointeger", "type", "ult" }), "math"),
  utf8 = readonly(copy(utf8, { "char", "charpattern", "codepoint", "codes", "len",
    "offset" }), "utf8"),
  null = null,
  json = json,
  format = string.format,
}

--- sorted(t): like pairs(t), in key order (numbers, then strings): `pairs` order changes
--- from run to run, and a file that changes for nothing reloads its reader for nothing.
function HELPERS.sorted(t)
  if type(t) ~= "table" then error("sorted: a table expected, got " .. type(t), 2) end
  local keys, i = sorted_keys(t), 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, t[k] end
  end
end

--- keys(t) -> the keys of t, sorted.
function HELPERS.keys(t)
  if type(t) ~= "table" then error("keys: a table expected, got " .. type(t), 2) end
  return sorted_keys(t)
end

--- join(list, sep) -> the list's values as text, separated by sep (default ", ").
function HELPERS.join(list, sep)
  if type(list) ~= "table" then error("join: a list expected, got " .. type(list), 2) end
  local parts = {}
  for i = 1, #list do parts[i] = text_of(list[i], ("element %d"):format(i)) end
  return table.concat(parts, sep or ", ")
end

--- default(v, d) -> v, or d when v is nil or null.
function HELPERS.default(v, d)
  if v == nil or v == null then return d end
  return v
end

-- ==== compiling ====

local TAGS = { ["{{"] = "}}", ["{%"] = "%}", ["{#"] = "#}" }

-- Splits the template into literal text and tags. A {% %} or {# #} tag alone on its
-- line (spaces and tabs around it) leaves nothing of that line, its line end included;
-- that line end is kept in the code (outside any string), so the chunk's lines stay the
-- template's lines. Returns the Lua source, or nil and "name:line: message".
local function translate(text, name)
  local code = { "local __o, __v, __c = {}, ...; " }
  local function literal(s)
    if s ~= "" then code[#code + 1] = ("__o[#__o + 1] = %q; "):format(s) end
  end
  local pos, line = 1, 1
  local pending = ""        -- literal text not yet emitted (its end may be trimmed)
  while true do
    local open = text:find("{[{%%#]", pos)
    if not open then break end
    local kind = text:sub(open, open + 1)
    local close = text:find(TAGS[kind], open + 2, true)
    local before = text:sub(pos, open - 1)
    local open_line = line
    for _ in before:gmatch("\n") do open_line = open_line + 1 end
    if not close then
      return nil, ("%s:%d: '%s' is never closed with '%s'"):format(name, open_line, kind,
        TAGS[kind])
    end
    local inner = text:sub(open + 2, close - 1)
    local after = close + 2
    pending = pending .. before
    local trimmed_eol = false
    if kind ~= "{{" then
      -- Alone on its line? Spaces before it back to the line start, and spaces then a
      -- line end (or the end of the text) after it.
      local head = open
      while head > 1 and text:byte(head - 1) ~= 10 do head = head - 1 end
      local lead = text:sub(head, open - 1)
      local tail, eol = text:match("^([ \t]*)(\n?)", after)
      if head >= pos and lead:match("^[ \t]*$") and (eol == "\n" or after + #tail > #text)
      then
        pending = pending:sub(1, #pending - #lead)
        after = after + #tail + #eol
        trimmed_eol = eol == "\n"
      end
    end
    literal(pending)
    pending = ""
    if kind == "{{" then
      local expr = inner:match("^%s*(.-)%s*$")
      if expr == "" then
        return nil, ("%s:%d: empty {{ }}"):format(name, open_line)
      end
      code[#code + 1] = ("__o[#__o + 1] = __v((%s), %q); ")
        :format(inner, (expr:gsub("%s+", " ")))
    elseif kind == "{%" then
      code[#code + 1] = inner .. " "
    else
      code[#code + 1] = (inner:gsub("[^\n]", ""))   -- a comment: only its line ends
    end
    if trimmed_eol then code[#code + 1] = "\n" end
    for _ in text:sub(pos, after - 1):gmatch("\n") do line = line + 1 end
    pos = after
  end
  literal(pending .. text:sub(pos))
  code[#code + 1] = "return __c(__o)"
  return table.concat(code)
end

--- compile(text, name) -> function(config) -> rendered text | nil, "name:line: message".
--- `name` names the template in messages (its file). The function raises
--- "name:line: message" when the template fails while rendering.
function M.compile(text, name)
  if type(text) ~= "string" then error("template text expected", 2) end
  name = name or "template"
  local source, err = translate(text, name)
  if not source then return nil, err end
  local config
  local env = setmetatable({}, {
    __index = function(_, k)
      local h = HELPERS[k]
      if h ~= nil then return h end
      if k == "config" then return config end
      local v = config[k]
      if v ~= nil then return v end
      error(("unknown name '%s' (components: %s)"):format(tostring(k),
        table.concat(sorted_keys(config), ", ")), 2)
    end,
    __newindex = function(_, k)
      error(("cannot set '%s': declare it with 'local'"):format(tostring(k)), 2)
    end,
    __metatable = "reactcfg.template",
  })
  local chunk, cerr = load(source, "@" .. name, "t", env)
  if not chunk then return nil, cerr end
  return function(cfg)
    config = cfg or {}
    return chunk(text_of, table.concat)
  end
end

--- render(text, name, config) -> rendered text | nil, "name:line: message".
function M.render(text, name, config)
  local fn, err = M.compile(text, name)
  if not fn then return nil, err end
  local ok, out = pcall(fn, config)
  if not ok then return nil, tostring(out) end
  return out
end

return M
