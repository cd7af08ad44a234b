-- Feature flags edited by people: accept the spellings they use, refuse what makes no
-- sense (and say why), hold back half-finished edits, and do not wake the application
-- for edits that are only documentation.
--
-- Each save goes through, in this order: transform -> validate -> filter -> only/ignore.
-- A value refused at any step is not applied: the previous flags stay in force, and an
-- event says what happened (change.rejected with the reason, or change.filtered).
local rc = require "reactcfg"

-- "on", "Yes", "TRUE", "1" -> true; "off", "no", "false", "0" -> false. Anything else is
-- left as it is, for validate to refuse with a clear message.
local WORDS = { on = true, yes = true, ["true"] = true, ["1"] = true,
                off = false, no = false, ["false"] = false, ["0"] = false }

local function normalise(v)
  local flags = {}
  for name, state in pairs(v.flags or {}) do
    local word = type(state) == "string" and WORDS[state:lower()]
    if word ~= nil then flags[name] = word else flags[name] = state end
  end
  v.flags = flags
  -- Rollout percentages may be written "25%" or 25.
  for name, pct in pairs(v.rollout or {}) do
    if type(pct) == "string" and pct:match("^%s*%d+%.?%d*%s*%%%s*$") then
      v.rollout[name] = tonumber(pct:match("%d+%.?%d*"))
    end
  end
  return v
end

local function check(v)
  for name, state in pairs(v.flags) do
    if type(state) ~= "boolean" then
      return false, ("flag '%s' must be on or off, got %q"):format(name, tostring(state))
    end
  end
  for name, pct in pairs(v.rollout or {}) do
    if name ~= "note" then
      if v.flags[name] == nil then
        return false, ("rollout names an unknown flag '%s'"):format(name)
      end
      if type(pct) ~= "number" or pct < 0 or pct > 100 then
        return false, ("rollout of '%s' must be between 0%% and 100%%, got %s")
          :format(name, tostring(pct))
      end
    end
  end
  return true
end

return rc.policy {
  components = {
    features = {
      source = rc.file "flags.json",
      transform = normalise,                 -- runs first: the rest sees clean values
      validate = check,                      -- false, "reason": refused, old flags stay
      -- Someone is still editing: save with "draft": true, and nothing is applied
      -- until the file is saved again without it.
      filter = function(v) return v.draft ~= true end,
      -- Only changes to flags and rollout count. Owners and the rollout note are
      -- documentation: an edit that touches nothing else commits nothing. (When a
      -- counted change comes, the whole file is applied, notes included.)
      only = { "flags", "rollout" },
      ignore = { "rollout.note" },
    },
  },

  on_change = function(changes, snapshot)
    for _, c in ipairs(changes) do
      print(("revision %d: %s %s -> %s"):format(snapshot.revision, c.kind, c.path,
        tostring(c.new)))
    end
  end,
}
