-- Dependency-based updates: `app` is derived.toml merged over base.toml.
--
-- The application reads `app` only. A save of either file re-runs the merge, and the
-- changes of `base` and `app` arrive together in one commit (one revision), so nobody
-- ever sees the new base with the old merge.
local rc = require "reactcfg"

return rc.policy {
  components = {
    -- The shared settings, as they are on disk.
    base = { source = rc.file "base.toml" },

    -- This deployment's view. depends_on makes the engine evaluate `base` first and
    -- run `update` again whenever `base` changes, not only when derived.toml does.
    app = {
      source = rc.file "derived.toml",
      depends_on = { "base" },
      -- new: derived.toml as parsed (nil if the file is missing); ctx.base: base's value.
      update = function(new, ctx)
        -- Objects merge key by key; arrays of tables merge item by item when their
        -- `name` matches (the others are appended), instead of replacing the whole list.
        return rc.merge(ctx.base, new, { arrays = { by = "name" } })
      end,
    },
  },

  -- Runs after every commit (printed on stderr with a [policy] prefix).
  on_change = function(changes, snapshot)
    local app = snapshot.app
    if not (app and app.server and app.routes) then   -- both files deleted, say
      print(("revision %d: app has no server or routes"):format(snapshot.revision))
      return
    end
    local routes = {}
    for _, r in ipairs(app.routes) do
      routes[#routes + 1] = ("%s=%sms"):format(r.name, tostring(r.timeout_ms))
    end
    print(("revision %d: app listens on %s:%s, routes %s"):format(snapshot.revision,
      app.server.host, tostring(app.server.port), table.concat(routes, " ")))
  end,
}
