-- SPDX-License-Identifier: MIT (see LICENSE)
-- The documents render as written: every Markdown table has its header row, so no
-- table is cut in two (rows after a blank line would show as plain text).
describe("the documentation", function()
  local function documents()
    local list = { "README.md" }
    local p = io.popen("ls docs/*.md")
    for name in p:lines() do list[#list + 1] = name end
    p:close()
    return list
  end

  it("has no table rows cut off from their table's header", function()
    local orphans = {}
    for _, file in ipairs(documents()) do
      local lines = {}
      for line in io.lines(file) do lines[#lines + 1] = line end
      local fenced = false
      for n, line in ipairs(lines) do
        if line:match("^```") then fenced = not fenced end
        -- A row that starts a table must be a header: the next line is its separator.
        local starts = line:match("^|") and not (lines[n - 1] or ""):match("^|")
        if not fenced and starts and not (lines[n + 1] or ""):match("^|[%s:|%-]+|%s*$") then
          orphans[#orphans + 1] = ("%s:%d: %s"):format(file, n, line)
        end
      end
    end
    assert.same({}, orphans)
  end)
end)
