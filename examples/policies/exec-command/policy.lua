-- A command as a configuration source: any program that prints its configuration
-- (`vault kv get -format=json`, `aws ssm get-parameters-by-path`, `kubectl get configmap
-- -o json`, an in-house script) becomes a component, run without a shell every
-- `interval`, its standard output parsed in `format`.
--
-- Here `./fetch-limits.sh` stands for such a client: it prints limits.json as JSON and
-- fails (exit 2, with a message on standard error) while a file named `offline` exists.
local rc = require "reactcfg"

return rc.policy {
  cache = ".cache",

  components = {
    limits = {
      source = rc.exec {
        command = { "./fetch-limits.sh", "--format", "json" },
        interval = "1s",
        timeout = "5s",
        -- The child's whole environment: nothing of the engine's leaks in unless named.
        env = { LIMITS_FILE = "limits.json" },
        pass_env = { "HOME" },
        max_bytes = "1MB",
      },
      default = { rps = 10 },
      startup = "cached",
    },
  },

  on_change = function(changes, snapshot)
    for _, c in ipairs(changes) do
      print(("revision %d: %s %s -> %s"):format(snapshot.revision, c.kind, c.path,
        tostring(c.new)))
    end
  end,
}
