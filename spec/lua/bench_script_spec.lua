-- SPDX-License-Identifier: MIT (see LICENSE)
-- scripts/bench is one long bash script whose tables share helper functions: a second
-- function of the same name silently replaces the first for the whole script (a
-- `median` reading lines once replaced the `median` of arguments, and the parse + diff
-- table printed "-" in every cell). Nothing here runs a benchmark.
describe("scripts/bench", function()
  it("defines each shell function once", function()
    local seen, twice, n = {}, {}, 0
    for line in io.lines("scripts/bench") do
      n = n + 1
      local name = line:match("^%s*([%w_]+)%s*%(%)%s*{") or line:match("^%s*([%w_]+)%s*%(%)%s*$")
      if name then
        if seen[name] then twice[#twice + 1] = ("%s at lines %d and %d"):format(name, seen[name], n) end
        seen[name] = seen[name] or n
      end
    end
    assert.is_true(next(seen) ~= nil, "no function found: the pattern is wrong")
    assert.same({}, twice)
  end)
end)
