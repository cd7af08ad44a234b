-- What may change while the application runs, what must never be shown, and what to
-- do when a source breaks.
--
--   dynamic = false      the value is read once; a later change is NOT applied (the
--                        application could not act on it without restarting) and a
--                        restart.required event names the changed paths. Per path:
--                        dynamic = { ["a.b"] = false } keeps only those paths.
--   secret = true        the value is "<redacted>" in events, change lists, --run
--                        output and e:get; per path: secret = { "password" }. The
--                        policy's own functions and the C getters see the real value.
--   on_error             what a broken source (a file that no longer parses) means:
--                        "keep" (the default) keeps the last good value, "default"
--                        falls back to `default`, a function decides (and may log).
local rc = require "reactcfg"

return rc.policy {
  components = {
    -- The listening socket is bound once at start: any change needs a restart.
    listen = { source = rc.file "listen.json", dynamic = false },

    -- The pool can be resized live, but the database URL is only used to connect at
    -- start: a new URL waits for a restart, while pool changes in the same save apply.
    -- The password is redacted everywhere the engine shows values.
    db = {
      source = rc.file "db.json",
      dynamic = { url = false },
      secret = { "password" },
    },

    -- A whole secret component: the token file's text, redacted as a whole.
    api_token = {
      source = rc.file "api_token.txt",
      format = "text",
      secret = true,
      transform = function(text) return (text:gsub("%s+$", "")) end,  -- drop the newline
    },

    -- A broken tuning file is worse than none: fall back to safe defaults until it
    -- is fixed (the next good save is applied as usual).
    tuning = {
      source = rc.file "tuning.json",
      default = { cache_mb = 64, log_level = "info" },
      on_error = "default",
    },

    -- A broken limits file: log it and switch to conservative limits, marked as such so
    -- that the application (and whoever reads its status page) can tell.
    limits = {
      source = rc.file "limits.json",
      on_error = function(err, ctx)
        print(("limits: %s (line %d); using conservative limits"):format(err.message,
          err.line or 0))
        return { rps = 50, max_body_kb = 64, degraded = true }
      end,
    },
  },
}
