-- Conditional watching: development settings are watched only in development mode,
-- production settings otherwise.
--
-- A component whose condition is false is inactive: its source is stopped (no file
-- watch at all, so edits to dev.yaml in production cost nothing and change nothing)
-- and its value is its default, or it is absent. When APP_MODE changes, the engine
-- re-evaluates the conditions, starts one source, stops the other, and commits the
-- whole switch as one revision.
local rc = require "reactcfg"

local function development(c) return c.mode == "development" end

return rc.policy {
  components = {
    -- The mode, from the environment; unset means production. The engine looks at the
    -- environment every `interval` (a process has no change notification for it).
    mode = { source = rc.env { name = "APP_MODE", interval = "500ms" },
             default = "production" },

    -- Conditions read other components through `c`; the engine remembers what each
    -- condition read (here: mode) and re-evaluates it when that changes.
    dev  = { source = rc.file "dev.yaml", condition = development },
    prod = { source = rc.file "prod.yaml",
             condition = function(c) return not development(c) end },

    -- One place for the application to read, whichever mode is on. Its source never
    -- delivers: the value is computed from the components it depends on.
    settings = {
      source = rc.lua_source(function() end),
      depends_on = { "mode", "dev", "prod" },
      update = function(_, ctx)
        if ctx.mode == "development" then return ctx.dev end
        return ctx.prod
      end,
    },
  },

  on_change = function(changes, snapshot)
    print(("revision %d: mode %s, log level %s"):format(snapshot.revision, snapshot.mode,
      snapshot.settings and snapshot.settings.log_level or "(none)"))
  end,
}
