-- SPDX-License-Identifier: MIT (see LICENSE)
-- scripts/bench is one long bash script whose tables share helper functions: a second
-- function of the same name silently replaces the first for the whole script (a
-- `median` reading lines once replaced the `median` of arguments, and the parse + diff
-- table printed "-" in every cell). It runs under `set -e -o pipefail`: a pipeline whose
-- benchmark program exits non-zero inside `$(...)` ends the whole run without a word
-- (the hostile table's `reactcfg-lua --check` did, and every table after it was lost).
-- Nothing here runs a benchmark.
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

  it("lets no benchmark program's exit status end the run from inside a pipeline",
    function()
    -- Logical lines (backslash continuations joined) that capture a pipeline whose
    -- source is one of our programs must tolerate its failure with `|| true`.
    local logical, cur, bad = {}, "", {}
    for line in io.lines("scripts/bench") do
      if line:match("\\$") then
        cur = cur .. line:sub(1, -2) .. " "
      else
        logical[#logical + 1] = cur .. line
        cur = ""
      end
    end
    local checked = 0
    for _, l in ipairs(logical) do
      if l:match("[%w_]+=%$%(") and l:match("%s|%s") and
        (l:match("bench_bin") or l:match("reactcfg%-lua")) then
        checked = checked + 1
        if not l:match("||%s*true") then bad[#bad + 1] = l end
      end
    end
    assert.is_true(checked >= 5, "no capture found: the pattern is wrong")
    assert.same({}, bad)
  end)
end)
