-- SPDX-License-Identifier: MIT (see LICENSE)
-- reactcfg-lua's --help, man page and bash completion are generated from one source
-- (cli/reactcfg-lua.txt by scripts/gen-cli-docs): they name the same options, and every
-- option they name is one the program knows.
local H = require "helpers"

local bin = H.bin("reactcfg-lua")
local build = os.getenv("RC_BIN") or "build"

local function help_options(help)
  local opts = {}
  for line in help:gmatch("[^\n]+") do
    local term = line:match("^  ([^ ].-)  ") or line:match("^      ([^ ].-)  ")
      or line:match("^  ([^ ].*)$")
    for tok in (term or ""):gmatch("%f[%w-](%-%-?%a[%w-]*)") do opts[tok] = true end
  end
  local list = {}
  for o in pairs(opts) do list[#list + 1] = o end
  table.sort(list)
  return list
end

describe("reactcfg-lua's documentation", function()
  local help = H.sh(bin .. " --help")

  it("prints --help verbatim from cli/reactcfg-lua.txt", function()
    local f = assert(io.open("cli/reactcfg-lua.txt"))
    local src = f:read("a")
    f:close()
    local section = src:match("\n@help\n(.-)\n@")
    assert.equal(section:gsub("\n*$", "") .. "\n", help)
  end)

  it("has a man page that shows every option of --help", function()
    -- Without LD_PRELOAD: under the ASan build it would instrument troff too.
    local page = H.sh("env -u LD_PRELOAD MANWIDTH=200 man -l " .. build .. "/reactcfg-lua.1 2>&1")
    for _, heading in ipairs({ "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS",
      "ENVIRONMENT", "FILES", "SEE ALSO" }) do
      assert.matches("\n" .. heading .. "\n", page)
    end
    for _, opt in ipairs(help_options(help)) do
      assert.truthy(page:find(opt, 1, true), opt .. " is not in the man page")
    end
  end)

  it("has a bash completion for every option and command", function()
    local function complete(words)
      local out = H.sh(("bash -c 'source %s/reactcfg-lua.bash; COMP_WORDS=(%s); "
        .. "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _reactcfg_lua; echo \"${COMPREPLY[*]}\"'")
        :format(build, words))
      return (out:gsub("\n$", ""))
    end
    assert.equal("--exec --exec-restart --exec-signal", complete("reactcfg-lua run p.lua --ex"))
    assert.equal("HUP", complete("reactcfg-lua run p.lua --exec-signal H"))
    assert.equal("replay run", complete("reactcfg-lua r"))
    assert.equal("toml", complete("reactcfg-lua --dump x --format to"))
    local all = complete("reactcfg-lua -")
    for _, opt in ipairs(help_options(help)) do
      assert.truthy((" " .. all .. " "):find(" " .. opt .. " ", 1, true), opt)
    end
  end)

  it("names only options the program knows", function()
    -- Options of Lua mode and of `replay` are tried where they belong.
    local where = {
      ["-e"] = " -e 'x = 1'", ["-i"] = " -e 'x = 1' -i",
      ["--compare"] = " replay /nonexistent.jsonl /nonexistent.lua --compare /x.lua",
    }
    for _, opt in ipairs(help_options(help)) do
      local args = where[opt] or (" --check /nonexistent.lua " .. opt .. " x")
      local out = H.sh(bin .. args .. " 2>&1 </dev/null")
      assert.not_matches("unknown option '" .. opt:gsub("%-", "%%-") .. "'", out)
    end
  end)
end)
