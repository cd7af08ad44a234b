-- A source written in Lua: poll a command and use what it prints.
--
-- Any program can be a configuration source this way: `consul kv get app/status`,
-- `kubectl get configmap app -o jsonpath={.data.status}`, `vault kv get -format=json`,
-- an in-house script. The engine runs the function below on its own event loop, with
-- luv (`uv`) for timers and processes, so nothing blocks: the command runs in a child
-- process and its output is read as it comes.
--
-- Here the command prints the file named by $STATUS_FILE (status.toml in the current
-- directory when unset), in TOML, every POLL_MS.
local rc = require "reactcfg"

local CMD = { "sh", "-c", 'cat -- "${STATUS_FILE:-status.toml}"' }
local POLL_MS = 500

-- Runs `cmd` once; calls done(exit_code, stdout, stderr) when the process has exited
-- and both pipes are read to the end. Returns the handles to close if stopped early.
local function run(uv, cmd, done)
  local out, err = uv.new_pipe(), uv.new_pipe()
  local text = { [out] = {}, [err] = {} }
  local pending, code = 3, nil            -- exit + EOF on stdout + EOF on stderr
  local function finish()
    pending = pending - 1
    if pending == 0 then
      done(code, table.concat(text[out]), table.concat(text[err]))
    end
  end
  local proc, why
  proc, why = uv.spawn(cmd[1], { args = { table.unpack(cmd, 2) }, stdio = { nil, out, err } },
    function(exit_code)
      code = exit_code
      proc:close()
      finish()
    end)
  if not proc then
    out:close()
    err:close()
    done(-1, "", ("cannot run %s: %s"):format(cmd[1], why))
    return nil
  end
  for _, pipe in ipairs { out, err } do
    pipe:read_start(function(_, chunk)
      if chunk then
        text[pipe][#text[pipe] + 1] = chunk
      else
        pipe:close()
        finish()
      end
    end)
  end
  return { proc, out, err }
end

return rc.policy {
  components = {
    status = {
      source = rc.lua_source(function(emit, uv, ctx)
        local timer = uv.new_timer()
        local running                     -- handles of the command being run, if any
        local last_error                  -- so that a failure that lasts is told once
        local function poll()
          if running then return end      -- the last run is still going: skip a tick
          running = run(uv, CMD, function(code, stdout, stderr)
            running = nil
            -- ctx.parse: the engine's own parsers. A parse error is reported as a
            -- source error (the last good value stays), as a bad file's would be.
            local value, problem
            if code ~= 0 then
              problem = ("%s exited with %d: %s"):format(CMD[1], code,
                (stderr:gsub("%s+$", "")))
            else
              value, problem = ctx.parse(stdout, "toml")
            end
            if problem then
              if problem ~= last_error then emit(nil, problem) end
              last_error = problem
            else
              last_error = nil
              emit(value)
            end
          end)
        end
        -- Poll now, then every POLL_MS. Emitting the same value again commits
        -- nothing: the engine compares it with the committed one.
        timer:start(0, POLL_MS, poll)
        -- The stop function: called when the source stops (engine stop, policy reload
        -- that removes it, a condition turning false). Close everything we opened.
        return function()
          timer:close()
          if running then
            local proc = running[1]
            proc:kill("sigterm")
            for _, h in ipairs(running) do
              if not h:is_closing() then h:close() end
            end
            running = nil
          end
        end
      end),
    },
  },

  on_change = function(changes, snapshot)
    local s = snapshot.status               -- absent until the first run has finished
    if s then
      print(("revision %d: maintenance=%s, %q"):format(snapshot.revision,
        tostring(s.maintenance), s.message))
    end
  end,
}
