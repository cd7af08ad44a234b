#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""gen_formats.py: writes ONE generated configuration four times, as JSON, YAML, TOML and
dotenv, for measuring parse throughput per format. Deterministic for a given seed and
size. Stdlib only: the YAML, TOML and dotenv writers are here.

    gen_formats.py [--mb 10] [--seed 1] [--check] DIR

writes DIR/config.json, DIR/config.yaml, DIR/config.toml and DIR/config.env. `--mb` sizes
the TOML file (about N * 1e6 bytes); the others hold the same data and are as large as
their syntax makes them. `--check` reads every file back (json, tomllib; PyYAML and
python-dotenv when they are importable) and compares it with the generated data.

The data: a few top-level settings and an [owner] table, then service sections
([services.svcN]) with scalar settings, arrays of strings and of integers, 2 to 5
sub-tables ([services.svcN.http], .db, ... some with a nested [....tls]) and 1 to 4
routes as an array of tables ([[services.svcN.routes]], some with a [....routes.match]
sub-table). Leaves are strings (hosts, URLs, paths, regions, a few non-ASCII and
multi-line ones), integers, floats, booleans, local dates and local date-times.

How each format writes the same data:
- JSON: indented by 2 spaces; dates and date-times are strings.
- YAML: block style only, 2-space indent; plain scalars where the YAML 1.2 core schema
  (and PyYAML's YAML 1.1 rules) read them back as the same string, double-quoted
  otherwise; dates and date-times double-quoted (strings, as in JSON); multi-line
  strings as literal blocks (|-).
- TOML: tables, arrays of tables, inline arrays; basic, literal and multi-line strings;
  dates and date-times as TOML local dates and local date-times.
- dotenv: one KEY=value line per leaf, the key being the path in upper case joined with
  '_' (SERVICES_SVC0_HTTP_PORT, SERVICES_SVC0_ROUTES_1_PATH, ..._TAGS_0); every value is
  a string, quoted when it has blanks, quotes or line breaks. Keys never collide: leaf
  keys start with a word (WORDS) that no table is named after, and numbered ones end in
  10..99 while arrays have fewer than 10 elements.
"""
import argparse
import json
import os
import random
import re
import sys

WORDS = ("timeout retries host port enabled name weight region zone replicas limit "
         "burst interval path url user pool size max min cache ttl level format target "
         "mode policy backoff ratio threshold queue worker shard index bucket key token "
         "endpoint protocol version owner team label tier priority window budget").split()
CONCERNS = ("http", "db", "redis", "auth", "metrics", "messaging", "storage", "tracing")
REGIONS = ("us-east-1", "us-west-2", "eu-central-1", "ap-south-1", "sa-east-1")
TLDS = ("internal", "example.com", "svc.cluster.local", "corp.net")
CITIES = ("Zürich", "São Paulo", "Kraków", "東京", "Reykjavík", "Montréal")
METHODS = ("GET", "POST", "PUT", "DELETE")


class LocalDate(str):
    """A date ("2024-05-01"): a TOML local date, a string in the other formats."""


class LocalDateTime(str):
    """A date-time without offset ("2024-05-01T12:30:00"): TOML local date-time."""


# =======================================================================================
# The data
# =======================================================================================

class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def word(self):
        return self.rng.choice(WORDS)

    def key(self, taken):
        """A new leaf key: word, word_word or word_NN (NN in 10..99, see the docstring)."""
        rng = self.rng
        while True:
            r = rng.random()
            if r < 0.6:
                k = self.word()
            elif r < 0.9:
                k = self.word() + "_" + self.word()
            else:
                k = "%s_%d" % (self.word(), rng.randint(10, 99))
            if k not in taken:
                taken.add(k)
                return k

    def date(self):
        rng = self.rng
        return LocalDate("20%02d-%02d-%02d" % (rng.randint(10, 29), rng.randint(1, 12),
                                               rng.randint(1, 28)))

    def datetime(self):
        rng = self.rng
        s = "%sT%02d:%02d:%02d" % (self.date(), rng.randint(0, 23), rng.randint(0, 59),
                                   rng.randint(0, 59))
        if rng.random() < 0.25:
            s += ".%03d" % rng.randint(0, 999)
        return LocalDateTime(s)

    def string(self):
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return "%s-%d.%s" % (self.word(), rng.randint(1, 64), rng.choice(TLDS))
        if r < 0.5:
            return "https://%s.%s/%s/%s" % (self.word(), rng.choice(TLDS), self.word(),
                                            self.word())
        if r < 0.62:
            return "/var/lib/%s/%s.db" % (self.word(), self.word())
        if r < 0.75:
            return rng.choice(REGIONS)
        if r < 0.85:
            return '%s %s "%s"' % (self.word(), self.word(), self.word())
        if r < 0.9:
            return "%s, %s" % (rng.choice(CITIES), self.word())
        return "%s_%s" % (self.word().upper(), self.word())

    def scalar(self):
        rng = self.rng
        r = rng.random()
        if r < 0.40:
            return self.string()
        if r < 0.70:
            return rng.choice((rng.randint(0, 100), rng.randint(1000, 65535),
                               rng.randint(1, 10**9), -rng.randint(1, 1000)))
        if r < 0.80:
            return round(rng.uniform(0.001, 1000.0), 3)  # never an exponent in repr()
        if r < 0.92:
            return rng.random() < 0.5
        if r < 0.96:
            return self.datetime()
        return self.date()

    def array(self):
        rng = self.rng
        n = rng.randint(2, 6)
        if rng.random() < 0.5:
            return [rng.randint(1, 9999) for _ in range(n)]
        return [self.string() for _ in range(n)]

    def pairs(self, d, n, taken):
        for _ in range(n):
            k = self.key(taken)
            d[k] = self.array() if self.rng.random() < 0.12 else self.scalar()

    def table(self, lo, hi):
        d = {}
        self.pairs(d, self.rng.randint(lo, hi), set())
        return d

    def service(self, i):
        """One service: scalars first, then sub-tables, then arrays of tables, so every
        format writes the members in the same order."""
        rng = self.rng
        s = {"name": "svc%d" % i, "enabled": rng.random() < 0.8,
             "replicas": rng.randint(1, 12), "weight": round(rng.uniform(0.001, 1.0), 3),
             "region": rng.choice(REGIONS), "created": self.date(),
             "updated": self.datetime(),
             "tags": [self.word() for _ in range(rng.randint(1, 4))],
             "ports": [rng.randint(1024, 65535) for _ in range(rng.randint(1, 3))]}
        if rng.random() < 0.2:
            s["description"] = "%s %s %s\n%s %s" % tuple(self.word() for _ in range(5))
        self.pairs(s, rng.randint(3, 8), set(s))
        for c in rng.sample(CONCERNS, rng.randint(2, 5)):
            t = self.table(3, 9)
            if rng.random() < 0.25:
                t["tls"] = {"enabled": True, "cert": "/etc/tls/%s.pem" % self.word(),
                            "expires": self.date()}
            s[c] = t
        routes = []
        for _ in range(rng.randint(1, 4)):
            r = {"path": "/%s/%s" % (self.word(), self.word()),
                 "method": rng.choice(METHODS)}
            self.pairs(r, rng.randint(1, 4), set(r))
            if rng.random() < 0.3:
                r["match"] = {"header": "x-%s" % self.word(), "prefix": rng.random() < 0.5}
            routes.append(r)
        s["routes"] = routes
        return s

    def head(self):
        return {"title": "generated configuration", "version": 3,
                "generated": LocalDateTime("2024-05-01T12:30:00"),
                "owner": {"name": "Platform Team", "email": "platform@example.com",
                          "since": LocalDate("2019-03-01")}}


# =======================================================================================
# Writers
# =======================================================================================

def is_table(v):
    return isinstance(v, dict)


def is_table_array(v):
    return isinstance(v, list) and v and all(isinstance(e, dict) for e in v)


# ---- TOML ----

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
TOML_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b",
            "\f": "\\f"}


def toml_key(k):
    return k if BARE_KEY.match(k) else toml_basic(k)


def toml_basic(s):
    out = []
    for c in s:
        if c in TOML_ESC:
            out.append(TOML_ESC[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\u%04X" % ord(c))
        else:
            out.append(c)
    return '"%s"' % "".join(out)


def toml_string(s):
    if "\n" in s and not re.search(r'["\\\x00-\x09\x0b-\x1f\x7f]', s):
        return '"""\n%s"""' % s  # the newline right after """ is not part of the value
    if s.startswith("/") and not re.search(r"['\x00-\x1f\x7f]", s):
        return "'%s'" % s  # literal string: paths, as people write them
    return toml_basic(s)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (LocalDate, LocalDateTime)):
        return str(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[%s]" % ", ".join(toml_value(e) for e in v)
    if isinstance(v, dict):
        return "{ %s }" % ", ".join("%s = %s" % (toml_key(k), toml_value(e))
                                   for k, e in v.items())
    raise TypeError(type(v))


def toml_table(out, path, d, array=False):
    """Appends table `d` at `path` (a list of keys): its key/value lines under a header,
    then its sub-tables, then its arrays of tables. A table that holds only tables gets
    no header of its own (TOML defines it implicitly), as people write it."""
    plain = [(k, v) for k, v in d.items() if not is_table(v) and not is_table_array(v)]
    name = ".".join(toml_key(k) for k in path)
    if array:
        out.append("\n[[%s]]\n" % name)
    elif path and (plain or not d):
        out.append("\n[%s]\n" % name)
    for k, v in plain:
        out.append("%s = %s\n" % (toml_key(k), toml_value(v)))
    for k, v in d.items():
        if is_table(v):
            toml_table(out, path + [k], v)
    for k, v in d.items():
        if is_table_array(v):
            for e in v:
                toml_table(out, path + [k], e, array=True)


# ---- YAML ----

PLAIN_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*\Z")
# Plain scalars some YAML reader would not read back as that string (1.2 core schema and
# the 1.1 booleans PyYAML still resolves).
YAML_SPECIAL = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}


def yaml_quoted(s):
    out = []
    for c in s:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\x%02X" % ord(c))
        else:
            out.append(c)
    return '"%s"' % "".join(out)


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (LocalDate, LocalDateTime)):
        return '"%s"' % v
    if isinstance(v, str):
        if PLAIN_SAFE.match(v) and v.lower() not in YAML_SPECIAL:
            return v
        return yaml_quoted(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    raise TypeError(type(v))


def yaml_literal_ok(s):
    """Can `s` be written as a |- literal block and read back unchanged?"""
    lines = s.split("\n")
    return (len(lines) > 1 and all(l and l == l.strip() for l in lines)
            and not re.search(r"[\x00-\x1f\x7f]", s.replace("\n", "")))


def yaml_map(out, d, indent):
    sp = " " * indent
    for k, v in d.items():
        k = yaml_scalar(k)
        if isinstance(v, dict):
            out.append("%s%s:\n" % (sp, k))
            yaml_map(out, v, indent + 2)
        elif isinstance(v, list):
            out.append("%s%s:\n" % (sp, k))
            yaml_seq(out, v, indent + 2)
        elif isinstance(v, str) and "\n" in v and yaml_literal_ok(v):
            out.append("%s%s: |-\n" % (sp, k))
            out.extend("%s  %s\n" % (sp, line) for line in v.split("\n"))
        else:
            out.append("%s%s: %s\n" % (sp, k, yaml_scalar(v)))


def yaml_seq(out, items, indent):
    sp = " " * indent
    for e in items:
        if isinstance(e, dict):
            # "- " then the mapping's first key on the same line, the rest below it.
            sub = []
            yaml_map(sub, e, indent + 2)
            sub[0] = sp + "- " + sub[0][indent + 2:]
            out.extend(sub)
        elif isinstance(e, list):
            raise TypeError("nested sequences are not generated")
        else:
            out.append("%s- %s\n" % (sp, yaml_scalar(e)))


# ---- dotenv ----

ENV_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+-]+\Z")


def env_flatten(prefix, v, out):
    if isinstance(v, dict):
        for k, e in v.items():
            env_flatten(prefix + [k.upper()], e, out)
    elif isinstance(v, list):
        for i, e in enumerate(v):
            env_flatten(prefix + [str(i)], e, out)
    else:
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, float):
            v = repr(v)
        else:
            v = str(v)
        out.append(("_".join(prefix), v))


def env_value(s):
    if ENV_PLAIN.match(s):
        return s
    return '"%s"' % (s.replace("\\", "\\\\").replace('"', '\\"')
                     .replace("\n", "\\n"))


# =======================================================================================
# Reading back (--check)
# =======================================================================================

def plain(v):
    """The data as JSON and YAML read it: dates are strings."""
    if isinstance(v, dict):
        return {k: plain(e) for k, e in v.items()}
    if isinstance(v, list):
        return [plain(e) for e in v]
    if isinstance(v, (LocalDate, LocalDateTime)):
        return str(v)
    return v


def as_toml(v):
    """The data as tomllib reads it: dates are datetime.date / datetime.datetime."""
    import datetime
    if isinstance(v, dict):
        return {k: as_toml(e) for k, e in v.items()}
    if isinstance(v, list):
        return [as_toml(e) for e in v]
    if isinstance(v, LocalDate):
        return datetime.date.fromisoformat(v)
    if isinstance(v, LocalDateTime):
        return datetime.datetime.fromisoformat(v)
    return v


def check(data, env_pairs, paths):
    failed = False

    def report(fmt, ok, how):
        nonlocal failed
        print("gen_formats.py: check %s with %s: %s" % (fmt, how, "ok" if ok else "DIFFERS"),
              file=sys.stderr)
        failed |= not ok

    with open(paths["json"], encoding="utf-8") as f:
        report("json", json.load(f) == plain(data), "json")
    try:
        import tomllib
    except ImportError:
        print("gen_formats.py: no tomllib (Python < 3.11): TOML not checked", file=sys.stderr)
    else:
        with open(paths["toml"], "rb") as f:
            report("toml", tomllib.load(f) == as_toml(data), "tomllib")
    try:
        import yaml
    except ImportError:
        print("gen_formats.py: no PyYAML: YAML not checked", file=sys.stderr)
    else:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(paths["yaml"], encoding="utf-8") as f:
            report("yaml", yaml.load(f, Loader=loader) == plain(data), "PyYAML")
    try:
        from dotenv import dotenv_values
    except ImportError:
        print("gen_formats.py: no python-dotenv: dotenv not checked", file=sys.stderr)
    else:
        got = dotenv_values(paths["dotenv"], interpolate=False)
        report("dotenv", list(got.items()) == env_pairs, "python-dotenv")
    return not failed


# =======================================================================================

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=10.0, help="size of the TOML file in MB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check", action="store_true",
                    help="read every file back and compare it with the data")
    ap.add_argument("dir")
    a = ap.parse_args()
    g = Gen(a.seed)
    target = int(a.mb * 1e6)

    # The data grows one service at a time until its TOML text reaches the target size.
    data = g.head()
    toml = ["# generated by bench/gen_formats.py --mb %g --seed %d\n" % (a.mb, a.seed)]
    toml_table(toml, [], data)
    services = data["services"] = {}
    size = sum(len(s.encode("utf-8")) for s in toml)
    i = 0
    while size < target:
        s = services["svc%d" % i] = g.service(i)
        chunk = []
        toml_table(chunk, ["services", "svc%d" % i], s)
        size += sum(len(c.encode("utf-8")) for c in chunk)
        toml.extend(chunk)
        i += 1

    yaml = ["# generated by bench/gen_formats.py --mb %g --seed %d\n" % (a.mb, a.seed)]
    yaml_map(yaml, data, 0)
    env_pairs = []
    env_flatten([], data, env_pairs)
    if len({k for k, _ in env_pairs}) != len(env_pairs):
        sys.exit("gen_formats.py: two dotenv keys collide (a bug in the generator)")
    env = ["# generated by bench/gen_formats.py --mb %g --seed %d\n" % (a.mb, a.seed)]
    env.extend("%s=%s\n" % (k, env_value(v)) for k, v in env_pairs)

    os.makedirs(a.dir, exist_ok=True)
    paths = {f: os.path.join(a.dir, "config." + ext) for f, ext in
             (("json", "json"), ("yaml", "yaml"), ("toml", "toml"), ("dotenv", "env"))}
    texts = {"json": json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n",
             "yaml": "".join(yaml), "toml": "".join(toml), "dotenv": "".join(env)}
    for fmt, path in paths.items():
        # Written to a temporary name and renamed, so a reader never sees a partial file.
        with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
            f.write(texts[fmt])
        os.replace(path + ".tmp", path)
        print("gen_formats.py: %s: %d bytes" % (path, len(texts[fmt].encode("utf-8"))),
              file=sys.stderr)
    print("gen_formats.py: %d services, %d leaves" % (i, len(env_pairs)), file=sys.stderr)
    if a.check and not check(data, env_pairs, paths):
        sys.exit(1)


if __name__ == "__main__":
    main()
