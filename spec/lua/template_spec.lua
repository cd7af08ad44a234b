-- SPDX-License-Identifier: MIT (see LICENSE)
-- The template language of policy outputs (reactcfg.template, docs/SIDECAR.md).
require "reactcfg"
local T = require "reactcfg.template"

local function render(text, config)
  return T.render(text, "t.tmpl", config or {})
end

describe("templates", function()
  it("copies text and inserts expressions", function()
    assert.equal("port 8080, ratio 0.5, on true\n",
      render("port {{ s.port }}, ratio {{ s.ratio }}, on {{ s.on }}\n",
        { s = { port = 8080, ratio = 0.5, on = true } }))
    assert.equal("no tags at all {} }} %}", render("no tags at all {} }} %}"))
    assert.equal("a-b", render("{{ x .. '-' .. y }}", { x = "a", y = "b" }))
  end)

  it("runs statements, and a tag alone on its line leaves no line behind", function()
    local text = [[
upstream app {
  {% for _, b in ipairs(backends) do %}
  server {{ b.host }}:{{ b.port }};
  {% end %}
}
{# a comment line #}
{% if tls then %}ssl on;{% else %}ssl off;{% end %}
]]
    local cfg = { backends = { { host = "a", port = 1 }, { host = "b", port = 2 } },
      tls = false }
    assert.equal("upstream app {\n  server a:1;\n  server b:2;\n}\nssl off;\n",
      render(text, cfg))
  end)

  it("keeps text and other tags on a line with a statement", function()
    assert.equal("x=1 y\n", render("x={{ x }} {% if true then %}y{% end %}\n", { x = 1 }))
    assert.equal("[1][2]", render("{% for i = 1, 2 do %}[{{ i }}]{% end %}"))
  end)

  it("offers sorted(), keys(), join(), json() and default() for stable output", function()
    local cfg = { m = { b = 2, a = 1, c = 3 }, l = { "x", "y" } }
    assert.equal("a=1 b=2 c=3 ", render("{% for k, v in sorted(m) do %}{{ k }}={{ v }} {% end %}",
      cfg))
    assert.equal("a,b,c", render("{{ join(keys(m), ',') }}", cfg))
    assert.equal('{"a":1,"b":2,"c":3} ["x","y"]', render("{{ json(m) }} {{ json(l) }}", cfg))
    assert.equal("8080 9090", render("{{ default(config.port, 8080) }} "
      .. "{{ default(s.port, 1) }}", { s = { port = 9090 } }))
    assert.equal('"q\\"\\n"', render("{{ json(s) }}", { s = 'q"\n' }))
  end)

  it("sees the whole configuration as `config`, and components by name", function()
    assert.equal("1 1", render("{{ a }} {{ config.a }}", { a = 1 }))
  end)

  it("names the template line of a nil value, a table or an unknown name", function()
    local _, err = render("line one\n{{ s.port }}\n", { s = {} })
    assert.equal("t.tmpl:2: {{ s.port }} is nil (write {{ s.port or \"\" }} for an "
      .. "optional value)", err)
    _, err = render("\n\n{{ s }}", { s = { 1 } })
    assert.matches("^t%.tmpl:3: {{ s }} is a table: use json", err)
    _, err = render("{% for _, x in ipairs(nope) do %}{% end %}", { s = 1 })
    assert.matches("^t%.tmpl:1: unknown name 'nope' %(components: s%)", err)
    _, err = render("\n{{ s.a.b }}", { s = {} })
    assert.matches("^t%.tmpl:2: attempt to index a nil value", err)
  end)

  it("reports unclosed tags and Lua syntax errors with their line", function()
    local _, err = render("a\nb {{ x\n")
    assert.equal("t.tmpl:2: '{{' is never closed with '}}'", err)
    _, err = render("a\n{% for x in do %}\n{% end %}")
    assert.matches("^t%.tmpl:2: ", err)
    _, err = render("{{ }}")
    assert.equal("t.tmpl:1: empty {{ }}", err)
    _, err = render("one\n{% if x then %}\nno end")
    assert.matches("^t%.tmpl:%d: .*'end' expected", err)
  end)

  it("keeps line numbers after trimmed lines, comments and multi-line tags", function()
    local text = "{% local a = 1 %}\n{# two\nlines #}\n{{\n  a }}\n{{ nope.x }}\n"
    local _, err = render(text)
    assert.matches("^t%.tmpl:6: unknown name 'nope'", err)
  end)

  it("runs sandboxed: no I/O, no loading code, no globals to set", function()
    for _, expr in ipairs({ "io", "os", "require", "load", "dofile", "debug",
      "package", "setmetatable", "collectgarbage" }) do
      local _, err = render("{{ type(" .. expr .. ") }}")
      assert.matches("unknown name '" .. expr .. "'", err, expr)
    end
    local _, err = render("{{ string.dump }}")
    assert.matches("is nil", err)
    _, err = render("{% x = 1 %}")
    assert.matches("cannot set 'x': declare it with 'local'", err)
    _, err = render("{% string.upper = nil %}")
    assert.matches("read%-only", err)
  end)
end)
