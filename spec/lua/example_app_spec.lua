-- SPDX-License-Identifier: MIT (see LICENSE)
-- examples/app.c, the program scripts/demo runs: its pool module applies a size within
-- its limit and refuses one above it (nothing committed, the next good save applies), it
-- prints what changed, reads from its main thread on SIGUSR1, survives SIGHUP (a reload
-- of every source) and stops cleanly on SIGTERM.
local H = require "spec.lua.helpers"

describe("example-app", function()
  local dir
  before_each(function()
    dir = H.tmpdir("example-app")
    assert(select(2, H.sh(("cp -R examples/policy.lua examples/config '%s/'"):format(dir)))
      == 0)
  end)
  after_each(function() H.rmdir(dir) end)

  it("applies the pool size through its module and refuses one above the limit", function()
    local out, code = H.sh(([[
cd '%s'
APP_MODE=test '%s' policy.lua > out.txt 2>&1 &
app=$!
waitfor() { for i in $(seq 200); do grep -q "$1" out.txt && return 0; sleep 0.05; done; return 1; }
waitfor 'status (main thread, revision 1)' || exit 11
sed -i 's/"max": 10/"max": 20/' config/app.json
waitfor 'revision 2:' || exit 12
sed -i 's/"max": 20/"max": 80/' config/app.json
waitfor 'reload.rolledback' || exit 13
sed -i 's/"max": 80/"max": 40/' config/app.json
waitfor 'revision 3:' || exit 14
kill -HUP $app; sleep 0.2
kill -USR1 $app
waitfor 'status (main thread, revision 3)' || exit 15
kill -TERM $app; wait $app; echo "status=$?"
]]):format(dir, H.bin("example-app")))
    local log = io.open(dir .. "/out.txt"):read("a")
    assert.equal(0, code, out .. log)
    assert.matches("status=0", out)
    assert.matches("pool: resized from 10 to 20 connections\nrevision 2:\n  modified "
      .. "settings%.database%.pool%.max +10 %-> 20", log)
    assert.matches("%[module%.failed%] +module 'pool' refused the changes: 80 connections "
      .. "is above the pool's limit of 50", log)
    assert.matches("%[reload%.failed%]", log)
    assert.not_matches("80\n", log:match("revision 3:.*") or "")
    assert.matches("pool: resized from 20 to 40 connections\nrevision 3:\n  modified "
      .. "settings%.database%.pool%.max +20 %-> 40", log)
    assert.matches("status %(main thread, revision 3%): mode=test port=8080 pool%.max=40", log)
    assert.matches("example%-app: stopped", log)
    assert.not_matches("reload%.started", log)
  end)
end)
