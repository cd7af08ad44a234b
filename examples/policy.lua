-- SPDX-License-Identifier: MIT (see LICENSE)
-- The demo's policy: settings from a JSON file, secrets from a dotenv file (marked
-- secret: the application and the CLI never print their values), the run mode from the
-- environment, and every APP_* variable gathered into one table.
local rc = require "reactcfg"

return rc.policy {
  components = {
    settings = { source = rc.file "config/app.json", debounce = "50ms" },
    secrets  = { source = rc.file "config/.env", default = {}, secret = true },
    mode     = { source = rc.env "APP_MODE", default = "production" },
    app_env  = { source = rc.env { prefix = "APP_", interval = "500ms" } },
  },
  on_change = function(changes, snapshot)
    -- Policies see every commit too; the C application prints the details.
    print(("policy saw revision %d: %d change(s)"):format(snapshot.revision, #changes))
  end,
}
