-- SPDX-License-Identifier: MIT (see LICENSE)
-- markdown.lua: reads the code blocks of a document, so that specs run what README.md
-- and docs/*.md show instead of a copy that could drift from them.
local M = {}

--- blocks(path) -> list of { lang, text, line (of the opening fence), before (the last
--- non-blank line above the fence), heading (the last heading above it), name }.
--- `name` is the file a block shows: named by its first line's comment ("-- policy.lua",
--- "# config/app.toml", "{# t.tmpl #}", "/* app.c ... */") or by the line before it
--- ending in "`NAME`:".
function M.blocks(path)
  local out, cur, before, heading, n = {}, nil, "", "", 0
  for line in io.lines(path) do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        local first = cur.text:match("^([^\n]*)") or ""
        cur.name = first:match("^%-%- ([%w_./%-]+)") or first:match("^# ([%w_./%-]+)")
          or first:match("^{# ([%w_./%-]+)") or first:match("^/%* ([%w_./%-]+)")
          or cur.before:match("`([%w_./%-]+)`:%s*$")
        if cur.name then cur.name = cur.name:gsub(":$", "") end
        out[#out + 1] = cur
        cur = nil
      else
        cur.text = cur.text .. line .. "\n"
      end
    else
      local lang = line:match("^```(%S*)%s*$")
      if lang then
        cur = { lang = lang, text = "", line = n, before = before, heading = heading }
      elseif line:match("^#+ ") then
        heading, before = line, line
      elseif line:match("%S") then
        before = line
      end
    end
  end
  return out
end

--- The blocks under the heading that starts with `prefix` (up to the next heading of
--- the same or a higher level).
function M.section(blocks, prefix)
  local out = {}
  for _, b in ipairs(blocks) do
    if b.heading:sub(1, #prefix) == prefix then out[#out + 1] = b end
  end
  return out
end

--- The commands of a console block: its lines starting with "$ ", each with the output
--- lines shown after it.
function M.commands(block)
  local out = {}
  for line in block.text:gmatch("([^\n]*)\n") do
    local cmd = line:match("^%$ (.*)$")
    if cmd then
      out[#out + 1] = { command = cmd, output = {} }
    elseif out[#out] then
      table.insert(out[#out].output, line)
    end
  end
  return out
end

return M
