-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg.duration: durations as people write them ("200ms", "1.5s", "1m30s") turned
-- into milliseconds. A plain number is seconds. Units: us, ms, s, m, h.

local M = {}

local UNIT_MS = { us = 0.001, ["µs"] = 0.001, ms = 1, s = 1000, m = 60000, h = 3600000 }

--- parse(d) -> milliseconds (number), or nil and a message for a malformed duration.
function M.parse(d)
  if type(d) == "number" then
    if d ~= d or d < 0 or d == math.huge then
      return nil, ("invalid duration %s: must be a finite number >= 0"):format(tostring(d))
    end
    return d * 1000
  end
  if type(d) ~= "string" then
    return nil, "a duration must be a string like \"200ms\" or a number of seconds, got "
      .. type(d)
  end
  local s = d:gsub("^%s+", ""):gsub("%s+$", "")
  if s == "0" then return 0 end
  local total, pos, any = 0, 1, false
  while pos <= #s do
    local num, unit, nxt = s:match("^(%d*%.?%d+)([a-zµ]+)()", pos)
    if not num then
      return nil, ("invalid duration %q: expected a number followed by a unit "
        .. "(us, ms, s, m, h), e.g. \"200ms\" or \"1m30s\""):format(d)
    end
    local factor = UNIT_MS[unit]
    if not factor then
      return nil, ("invalid duration %q: unknown unit %q (use us, ms, s, m or h)")
        :format(d, unit)
    end
    total = total + tonumber(num) * factor
    pos, any = nxt, true
  end
  if not any then
    return nil, ("invalid duration %q: empty"):format(d)
  end
  return total
end

return M
