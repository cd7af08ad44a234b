-- SPDX-License-Identifier: MIT (see LICENSE)
-- Hostile and moving paths for the file source (issue 15, items 3 and 4): only regular
-- files are read, anything else at the path is an error naming it while the last good
-- value stays, and a file whose directory (or an ancestor) is renamed, deleted or made
-- again is found again without a restart.
local H = require "spec.lua.helpers"

local POLICY = [[
local rc = require "reactcfg"
return rc.policy { components = { app = rc.file "%s" } }
]]

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- Runs until app.v is `want` (at most 5 s); returns what it is then.
local function wait_value(e, want)
  e:run_until(function() return e:get("app.v") == want end, "5s")
  return e:get("app.v")
end

-- Runs until a source.error whose message matches `pattern` arrives (at most 5 s).
local function wait_error(e, pattern)
  local got
  e:run_until(function()
    for _, ev in ipairs(H.events(e, "source.error")) do
      if ev.message:match(pattern) then got = ev end
    end
    return got ~= nil
  end, "5s")
  return got
end

describe("a watched path that is not a regular file", function()
  after_each(H.cleanup)

  it("is an error naming a FIFO at start, and the source recovers with a file", function()
    local dir = H.tmpdir("fifo")
    sh("mkfifo '" .. dir .. "/app.json'")
    H.write(dir .. "/policy.lua", POLICY:format("app.json"))
    local rc = require "reactcfg"
    local e = assert(rc.engine(dir .. "/policy.lua"))
    assert(e:start())                                 -- no hang in open()
    local ev = wait_error(e, "is a FIFO")
    assert(ev, "no error naming the FIFO")
    assert.matches("app.json is a FIFO, not a regular file", ev.message)
    assert.is_nil(e:get("app"))
    sh("rm '" .. dir .. "/app.json'")
    H.write(dir .. "/app.json.tmp", '{"v": 1}')
    sh(("mv '%s/app.json.tmp' '%s/app.json'"):format(dir, dir))
    assert.equal(1, wait_value(e, 1))
    assert.equal(1, #H.events(e, "source.recovered"))
    e:close()
    H.rmdir(dir)
  end)

  it("keeps the last good value while a FIFO, a socket or a directory is there", function()
    local e, dir = H.engine(POLICY:format("app.json"), { ["app.json"] = '{"v": 1}' })
    e:events()
    local cases = {
      { "a FIFO", "mkfifo '%s/app.json'" },
      { "a socket", "python3 -c \"import socket; socket.socket(socket.AF_UNIX)"
        .. ".bind('%s/app.json')\"" },
      { "a directory", "mkdir '%s/app.json'" },
    }
    for i, case in ipairs(cases) do
      sh(("rm -rf '%s/app.json'"):format(dir))
      sh(case[2]:format(dir))
      local ev = wait_error(e, "is " .. case[1])
      assert(ev, "no error naming " .. case[1])
      assert.matches("app.json is " .. case[1] .. ", not a regular file; the last good "
        .. "value stays", ev.message)
      assert.equal(i, e:get("app.v"))
      sh(("rm -rf '%s/app.json'"):format(dir))
      H.write(dir .. "/app.json.tmp", ('{"v": %d}'):format(i + 1))
      sh(("mv '%s/app.json.tmp' '%s/app.json'"):format(dir, dir))
      assert.equal(i + 1, wait_value(e, i + 1))
    end
  end)
end)

describe("a watched file whose directory moves", function()
  after_each(H.cleanup)

  it("is found again after its directory is renamed away and made again", function()
    local e, dir = H.engine(POLICY:format("conf/app.json"), {})
    sh(("mkdir '%s/conf'"):format(dir))
    H.write(dir .. "/conf/app.json", '{"v": 1}')
    assert.equal(1, wait_value(e, 1))
    sh(("mv '%s/conf' '%s/conf.old'; mkdir '%s/conf'"):format(dir, dir, dir))
    -- After the missing-file grace (100 ms) the component is absent...
    e:run_until(function() return e:get("app") == nil end, "5s")
    assert.is_nil(e:get("app"))
    -- ...and a file written later in the new directory is seen.
    H.write(dir .. "/conf/app.json", '{"v": 2}')
    assert.equal(2, wait_value(e, 2))
    -- and the renamed directory is not watched any more
    H.write(dir .. "/conf.old/app.json", '{"v": 99}')
    e:run("200ms")
    assert.equal(2, e:get("app.v"))
  end)

  it("is found again after its directory is deleted and made again", function()
    local e, dir = H.engine(POLICY:format("conf/app.json"), {})
    sh(("mkdir '%s/conf'"):format(dir))
    H.write(dir .. "/conf/app.json", '{"v": 1}')
    assert.equal(1, wait_value(e, 1))
    sh(("rm -rf '%s/conf'; mkdir '%s/conf'"):format(dir, dir))
    H.write(dir .. "/conf/app.json", '{"v": 2}')
    assert.equal(2, wait_value(e, 2))
  end)

  it("is found again after an ancestor is renamed and the path made again", function()
    local e, dir = H.engine(POLICY:format("a/b/conf/app.json"), {})
    sh(("mkdir -p '%s/a/b/conf'"):format(dir))
    H.write(dir .. "/a/b/conf/app.json", '{"v": 1}')
    assert.equal(1, wait_value(e, 1))
    sh(("mv '%s/a' '%s/a.old'; mkdir -p '%s/a/b/conf'"):format(dir, dir, dir))
    e:run_until(function() return e:get("app") == nil end, "5s")
    H.write(dir .. "/a/b/conf/app.json", '{"v": 2}')
    assert.equal(2, wait_value(e, 2))
    H.write(dir .. "/a.old/b/conf/app.json", '{"v": 99}')
    e:run("200ms")
    assert.equal(2, e:get("app.v"))
  end)

  it("is seen when directories that did not exist at start are made", function()
    local e, dir = H.engine(POLICY:format("x/y/app.json"), {})
    e:events()
    sh(("mkdir -p '%s/x/y'"):format(dir))
    H.write(dir .. "/x/y/app.json", '{"v": 3}')
    assert.equal(3, wait_value(e, 3))
  end)
end)
