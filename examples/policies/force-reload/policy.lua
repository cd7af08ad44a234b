-- Force reload: a save notifies even when the content did not change.
--
-- Normally the engine compares what a source delivers with what is committed, and an
-- identical save commits nothing. Sometimes the save itself is the signal: "re-resolve
-- the upstream host names now", "re-open the certificate files", "re-warm the cache".
-- With force = true, saving routes.json unchanged (or `touch routes.json`, which opens
-- it for writing) still commits one revision with a single "touched" change of the
-- component, so subscribers to `routes` run again.
local rc = require "reactcfg"

return rc.policy {
  components = {
    -- Saving it always notifies: a "touched" change when nothing differs, the usual
    -- added/modified/removed changes when something does.
    routes = { source = rc.file "routes.json", force = true },

    -- For comparison: an ordinary component. Saving it unchanged does nothing.
    settings = { source = rc.file "settings.json" },
  },

  on_change = function(changes, snapshot)
    for _, c in ipairs(changes) do
      if c.kind == "touched" then
        print(("revision %d: %s saved unchanged: re-resolving %d upstreams")
          :format(snapshot.revision, c.path, #snapshot.routes.upstreams))
      else
        print(("revision %d: %s %s"):format(snapshot.revision, c.kind, c.path))
      end
    end
  end,
}
