-- SPDX-License-Identifier: MIT (see LICENSE)
local rc = require "reactcfg"
local H = require "helpers"

-- Loads `text` as a policy; returns the engine or nil, "policy.lua:LINE: message".
local function load(text)
  local dir = H.tmpdir("load")
  H.write(dir .. "/policy.lua", text)
  local e, err = rc.engine(dir .. "/policy.lua")
  H.rmdir(dir)
  if e then e:close() end
  return e, err and err:gsub("^.*/policy%.lua", "policy.lua")
end

describe("loading a policy", function()
  it("accepts the first part of the vocabulary", function()
    local e, err = load([[
local rc = require "reactcfg"
return rc.policy {
  components = {
    settings = { source = rc.file "app.json", debounce = "200ms" },
    tuned    = { source = rc.file("tuned.env", { format = "dotenv" }),
                 debounce = { quiet = "50ms", max = "2s" } },
    mode     = { source = rc.env "APP_MODE", default = "production" },
    app      = { source = rc.env { prefix = "APP_", interval = "5s" } },
    kept     = { source = rc.file "kept.json", on_missing = "keep", format = "json" },
    short    = rc.file "short.json",
  },
}
]])
    assert.is_nil(err)
    assert.truthy(e)
  end)

  it("orders components by the line their source is declared on, not by text that looks like it", function()
    local dir = H.tmpdir("order")
    H.write(dir .. "/policy.lua", [[
local rc = require "reactcfg"
return rc.policy { components = {
  zeta  = { source = rc.env "RC_ORDER_ZETA", default = "alpha = a look-alike" },
  alpha = { source = rc.env "RC_ORDER_ALPHA", default = "x" },
} }
]])
    local e = assert(rc.engine(dir .. "/policy.lua"))
    assert(e:start())
    local names = {}
    for _, c in ipairs(e:components()) do names[#names + 1] = c.name end
    e:close()
    H.rmdir(dir)
    assert.same({ "zeta", "alpha" }, names)
  end)

  it("names the line of an unknown key", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy {
  components = {
    settings = { source = rc.file "app.json",
                 debouncee = "200ms" },
  },
}
]])
    assert.equal("policy.lua:5: component 'settings': unknown key 'debouncee' (did you "
      .. "mean 'debounce'?)", err)
  end)

  it("lists the component keys when an unknown one is not near any", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", colour = "red" },
} }
]])
    assert.equal("policy.lua:3: component 'a': unknown key 'colour' (expected one of: "
      .. "source, default, format, debounce, throttle, on_missing, depends_on, update, "
      .. "condition, validate, transform, filter, only, ignore, force, dynamic, secret, "
      .. "on_error, startup, retry, cache_for)", err)
  end)

  it("refuses a source constructor given more arguments than it takes, with the line",
    function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.http("http://127.0.0.1:1/a", { interval = "5s" }) },
} }
]])
    assert.matches("policy.lua:3: rc.http takes 1 argument, got 2 (options go in the one "
      .. "table: rc.http { ... })", err, 1, true)
  end)

  it("names the line of a bad duration", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy {
  components = {
    a = { source = rc.file "a.json" },
    b = { source = rc.file "b.json",
          debounce = "200" },
  },
}
]])
    assert.matches("^policy.lua:6: component 'b': debounce: invalid duration \"200\"", err)
  end)

  it("rejects an unknown format with its line", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.cfg", format = "ini" },
} }
]])
    assert.equal("policy.lua:3: component 'a': unknown format 'ini' (expected json, yaml, "
      .. "toml, dotenv, text)", err)
  end)

  it("rejects a component without a source", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { default = 1 },
} }
]])
    assert.equal("policy.lua:3: component 'a' has no 'source'", err)
  end)

  it("says that retry is for remote sources, with the line", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json",
        retry = { max = "3s" } },
} }
]])
    -- The list grows with each remote kind (registry order): only its start is fixed.
    assert.matches("^policy%.lua:4: component 'a': 'retry' applies to remote sources "
      .. "%(rc%.http, rc%.consul, rc%.vault, rc%.etcd, rc%.redis[^)]*%); a file source is "
      .. "read again on its next change$", err)
  end)

  it("rejects retry beside the source's own backoff, and unknown retry keys", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.http { url = "http://127.0.0.1:1/a", backoff = { min = "1s" } },
        retry = { max = "3s" } },
} }
]])
    assert.equal("policy.lua:4: component 'a': give 'retry' on the component or "
      .. "'backoff'/'circuit' on its source, not both", err)
    _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.http { url = "http://127.0.0.1:1/a" }, retry = { tries = 3 } },
} }
]])
    assert.equal("policy.lua:3: component 'a': retry: unknown key 'tries' (expected min, "
      .. "max, circuit)", err)
  end)

  it("rejects a cache_for that is not a positive duration", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", cache_for = "soon" },
} }
]])
    assert.matches("^policy.lua:3: component 'a': cache_for: ", err)
    _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", cache_for = 0 },
} }
]])
    assert.equal("policy.lua:3: component 'a': cache_for must be at least 1ms", err)
  end)

  it("rejects a dependency on an unknown component, with the line", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json",
        depends_on = { "nope" } },
} }
]])
    assert.equal("policy.lua:4: component 'a': depends_on: unknown component 'nope'", err)
  end)

  it("rejects a dependency cycle and names it, with the line", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json",
        depends_on = { "b" } },
  b = { source = rc.file "b.json",
        depends_on = { "c" } },
  c = { source = rc.file "c.json", depends_on = { "a" } },
} }
]])
    assert.equal("policy.lua:4: dependency cycle: a -> b -> c -> a", err)
    _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", depends_on = { "a" } },
} }
]])
    assert.equal("policy.lua:3: dependency cycle: a -> a", err)
  end)

  it("rejects an update that is not a function and odd depends_on entries", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json",
        update = 5 },
} }
]])
    assert.equal("policy.lua:4: component 'a': 'update' must be a function, got number", err)
    _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", depends_on = { 1 } },
} }
]])
    assert.equal("policy.lua:3: component 'a': depends_on[1] must be a component name, "
      .. "got number", err)
  end)

  it("accepts throttle as a table or a duration", function()
    local p, err = load([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json", throttle = { every = "5s", burst = 3 } },
  b = { source = rc.file "b.json", throttle = "250ms", debounce = "50ms" },
  c = { source = rc.file "c.json", throttle = { every = 2 } },
  d = { source = rc.file "d.json" },
} }
]])
    assert.is_nil(err)
    assert.truthy(p)
  end)

  it("names the line of a bad throttle", function()
    local cases = {
      { 'throttle = "soon"', "throttle: invalid duration \"soon\"" },
      { 'throttle = { every = "1s", burts = 2 }',
        "throttle: unknown key 'burts' %(expected every, burst%)" },
      { "throttle = { burst = 2 }", "throttle: 'every' is required" },
      { 'throttle = { every = "1s", burst = 0 }',
        "throttle: burst must be a positive integer, got 0" },
      { 'throttle = { every = "1s", burst = 1.5 }',
        "throttle: burst must be a positive integer, got 1.5" },
      { 'throttle = { every = "1s", burst = "2" }',
        "throttle: burst must be a positive integer, got 2" },
      { 'throttle = { every = "oops" }', "throttle.every: invalid duration \"oops\"" },
      { 'throttle = "0ms"', "throttle: every must be at least 1ms" },
      { "throttle = true", "throttle: a duration must be a string" },
    }
    for _, case in ipairs(cases) do
      local _, err = load(([[
local rc = require "reactcfg"
return rc.policy { components = {
  a = { source = rc.file "a.json" },
  b = { source = rc.file "b.json",
        %s },
} }
]]):format(case[1]))
      assert.matches("^policy.lua:5: component 'b': " .. case[2], err)
    end
  end)

  it("reports syntax errors with their line", function()
    local _, err = load("local rc = require 'reactcfg'\nreturn rc.policy {\n  components = {\n")
    assert.matches("^policy.lua:4: .*expected", err)
  end)

  it("reports runtime errors and undeclared globals with their line", function()
    local _, err = load("local rc = require 'reactcfg'\nlocal x = undefined_thing\nreturn {}\n")
    assert.equal("policy.lua:2: undeclared global 'undefined_thing' (declare it with 'local')",
      err)
    _, err = load("local rc = require 'reactcfg'\ncomponents = {}\nreturn {}\n")
    assert.matches("^policy.lua:2: assignment to undeclared global 'components'", err)
  end)

  it("rejects a policy that returns something else", function()
    local _, err = load("return 42\n")
    assert.matches("the policy must return rc.policy", err)
  end)

  it("normalizes outputs: paths from the policy's directory, modes, commands, signals",
    function()
    local loader = require "reactcfg.loader"
    local p = loader.load([[
local rc = require "reactcfg"
return rc.policy {
  components = { s = rc.file "s.json" },
  outputs = {
    upstreams = { template = "up.tmpl", path = "conf.d/up.conf", mode = "0640",
                  command = { "nginx", "-s", "reload" }, signal = false },
    app = { text = "port {{ s.port }}", path = "/etc/app.conf", signal = "sigusr1" },
    again = { text = "", path = "again.conf", signal = "restart", mode = 384 },
  },
}
]], "/p/policy.lua", "/p")
    assert.same({
      { name = "upstreams", line = 5, template = "/p/up.tmpl", path = "/p/conf.d/up.conf",
        mode = 416, command = { "nginx", "-s", "reload" }, signal = false },
      { name = "app", line = 7, text = "port {{ s.port }}", path = "/etc/app.conf",
        signal = "USR1" },
      { name = "again", line = 8, text = "", path = "/p/again.conf", signal = "restart",
        mode = 384 },
    }, p.outputs)
  end)

  it("names the line of each mistake in outputs", function()
    local function outputs_error(body)
      local _, err = load('local rc = require "reactcfg"\nreturn rc.policy {\n'
        .. '  components = {},\n  outputs = {\n' .. body .. '\n  },\n}\n')
      return err
    end
    assert.equal("policy.lua:6: output 'a': unknown key 'comand' (did you mean 'command'?)",
      outputs_error('    a = { text = "x", path = "a.conf",\n          comand = { "true" } },'))
    assert.equal("policy.lua:5: output 'a' needs one of 'template' (a template file) or "
      .. "'text' (the template itself), not both",
      outputs_error('    a = { text = "x", template = "a.tmpl", path = "a" },'))
    assert.equal("policy.lua:5: output 'a' has no 'path' (the file to write)",
      outputs_error('    a = { text = "x" },'))
    assert.equal("policy.lua:6: output 'a': command must be a list of words such as "
      .. '{ "nginx", "-s", "reload" } (it runs without a shell), got "nginx -s reload"',
      outputs_error('    a = { text = "x", path = "a",\n      command = "nginx -s reload" },'))
    assert.matches("^policy.lua:5: output 'a': signal must be a signal name %(ALRM, HUP, "
      .. "INT, QUIT, TERM, USR1, USR2, WINCH%), \"restart\" or false, got \"KILL\"",
      outputs_error('    a = { text = "x", path = "a", signal = "KILL" },'))
    assert.matches("^policy.lua:5: output 'a': mode must be permissions such as",
      outputs_error('    a = { text = "x", path = "a", mode = "rw-r--r--" },'))
    local dup = outputs_error('    a = { text = "x", path = "same" },\n'
      .. '    b = { text = "y", path = "same" },')
    assert.matches("^policy.lua:6: outputs 'a' and 'b' both write /%S+/same$", dup)
    local _, err = load('local rc = require "reactcfg"\nreturn rc.policy {\n'
      .. '  components = {},\n  outputs = "nginx.conf",\n}\n')
    assert.equal("policy.lua:4: 'outputs' must be a table of named outputs, got string", err)
  end)

  it("rejects unknown top-level keys and source options", function()
    local _, err = load([[
local rc = require "reactcfg"
return rc.policy {
  components = {},
  on_chang = function() end,
}
]])
    assert.matches("^policy.lua:4: unknown policy key 'on_chang'", err)
    _, err = load([[
local rc = require "reactcfg"
return rc.policy { components = { a = { source = rc.file("a.json", { formt = "json" }) } } }
]])
    assert.matches("^policy.lua:2: file: unknown option 'formt'", err)
  end)

  it("keeps policies away from io, os.execute, debug and other modules", function()
    for _, code in ipairs {
      "io.open('/etc/passwd')", "os.execute('true')", "debug.getinfo(1)",
      "require 'luv'", "string.dump(print)", "load('return 1')",
    } do
      local _, err = load("local rc = require 'reactcfg'\nlocal x = " .. code .. "\nreturn {}\n")
      assert.truthy(err, code)
      assert.matches("^policy.lua:2: ", err)
    end
  end)

  it("does not let one policy change the vocabulary for the next", function()
    local _, err = load("local rc = require 'reactcfg'\nrc.file = nil\nreturn {}\n")
    assert.matches("^policy.lua:2: attempt to modify read%-only table 'reactcfg'", err)
  end)

  it("stops a policy that loops forever, even inside pcall", function()
    local _, err = load("local rc = require 'reactcfg'\nwhile true do end\n")
    assert.matches("^policy.lua:2: stopped: the policy ran longer than its time budget", err)
    _, err = load("local rc = require 'reactcfg'\n"
      .. "for i = 1, 3 do pcall(function() while true do end end) end\nreturn {}\n")
    assert.matches("^policy.lua:2: stopped: the policy ran longer than its time budget", err)
  end)

  it("stops a policy that allocates without end", function()
    local _, err = load("local rc = require 'reactcfg'\nlocal t = {}\n"
      .. "while true do t[#t + 1] = ('x'):rep(1 << 20) .. #t end\n")
    assert.truthy(err)
    assert.matches("policy.lua", err)
  end)

  it("fails cleanly on a missing policy file", function()
    local e, err = rc.engine("/nonexistent/policy.lua")
    assert.is_nil(e)
    assert.matches("cannot open policy", err)
  end)
end)
