#!/usr/bin/env python3
"""gen_toml.py: writes a realistic TOML configuration of about N megabytes, for measuring
parse throughput. Deterministic for a given seed. Stdlib only.

    gen_toml.py --mb 10 --seed 1 OUT.toml

The shape, repeated until the size is reached: service sections ([services.NAME]) with
scalar settings, a sub-table per concern ([services.NAME.http], .db, .cache ...), arrays
of tables for routes and backends ([[services.NAME.routes]]), arrays of scalars, small
inline tables, dotted keys, a few comments, multi-line strings and date-times. Leaves are
strings (hosts, URLs, names, paths), integers (ports, timeouts, sizes), floats (ratios),
booleans and offset/local date-times, in the proportions configuration files have.
"""
import argparse
import random
import sys

WORDS = ("timeout retries host port enabled name weight region zone replicas limit "
         "burst interval path url user pool size max min cache ttl level format target "
         "mode policy backoff ratio threshold queue worker shard index bucket key token "
         "endpoint protocol version owner team label tier priority window budget").split()
CONCERNS = ("http", "db", "cache", "auth", "metrics", "queue", "storage", "tracing")
REGIONS = ("us-east-1", "us-west-2", "eu-central-1", "ap-south-1", "sa-east-1")
TLDS = ("internal", "example.com", "svc.cluster.local", "corp.net")


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def word(self):
        return self.rng.choice(WORDS)

    def key(self, taken):
        rng = self.rng
        while True:
            r = rng.random()
            if r < 0.6:
                k = self.word()
            elif r < 0.9:
                k = self.word() + "_" + self.word()
            else:
                k = self.word() + "_" + str(rng.randint(0, 99))
            if k not in taken:
                taken.add(k)
                return k

    def string(self):
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return '"%s-%d.%s"' % (self.word(), rng.randint(1, 64), rng.choice(TLDS))
        if r < 0.5:
            return '"https://%s.%s/%s/%s"' % (self.word(), rng.choice(TLDS), self.word(),
                                              self.word())
        if r < 0.65:
            return "'/var/lib/%s/%s.db'" % (self.word(), self.word())
        if r < 0.8:
            return '"%s"' % rng.choice(REGIONS)
        if r < 0.9:
            return '"%s %s \\"%s\\""' % (self.word(), self.word(), self.word())
        return '"%s_%s"' % (self.word().upper(), self.word())

    def scalar(self):
        rng = self.rng
        r = rng.random()
        if r < 0.40:
            return self.string()
        if r < 0.70:
            return str(rng.choice((rng.randint(0, 100), rng.randint(1000, 65535),
                                   rng.randint(1, 10**9))))
        if r < 0.80:
            return "%.3f" % rng.random()
        if r < 0.92:
            return rng.choice(("true", "false"))
        if r < 0.96:
            return "20%02d-%02d-%02dT%02d:%02d:%02dZ" % (
                rng.randint(10, 29), rng.randint(1, 12), rng.randint(1, 28),
                rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
        return "%d_%03d_%03d" % (rng.randint(1, 999), rng.randint(0, 999), rng.randint(0, 999))

    def array(self):
        rng = self.rng
        n = rng.randint(2, 6)
        if rng.random() < 0.5:
            return "[%s]" % ", ".join(str(rng.randint(1, 9999)) for _ in range(n))
        return "[%s]" % ", ".join(self.string() for _ in range(n))

    def inline(self):
        taken = set()
        parts = ["%s = %s" % (self.key(taken), self.scalar())
                 for _ in range(self.rng.randint(1, 4))]
        return "{ %s }" % ", ".join(parts)

    def pairs(self, out, n, reserved=()):
        rng = self.rng
        taken = set(reserved)
        for _ in range(n):
            k = self.key(taken)
            r = rng.random()
            if r < 0.75:
                v = self.scalar()
            elif r < 0.87:
                v = self.array()
            elif r < 0.95:
                v = self.inline()
            else:
                # dotted keys: k.sub = value (k is new in this table)
                out.append("%s.%s = %s\n" % (k, self.word(), self.scalar()))
                continue
            out.append("%s = %s\n" % (k, v))

    def service(self, out, name):
        rng = self.rng
        out.append("\n# service %s\n[services.%s]\n" % (name, name))
        self.pairs(out, rng.randint(4, 10), CONCERNS + ("routes", "description"))
        if rng.random() < 0.2:
            out.append('description = """\n%s %s %s\n%s %s\n"""\n' % tuple(
                self.word() for _ in range(5)))
        for c in rng.sample(CONCERNS, rng.randint(2, 5)):
            out.append("\n[services.%s.%s]\n" % (name, c))
            self.pairs(out, rng.randint(3, 9))
        for _ in range(rng.randint(1, 4)):
            out.append("\n[[services.%s.routes]]\n" % name)
            self.pairs(out, rng.randint(2, 6))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=10.0, help="approximate size in MB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out")
    a = ap.parse_args()
    g = Gen(a.seed)
    target = int(a.mb * 1e6)
    out = ['# generated by bench/gen_toml.py --mb %g --seed %d\n' % (a.mb, a.seed),
           'title = "generated configuration"\nversion = 3\n']
    size = sum(len(s) for s in out)
    i = 0
    while size < target:
        start = len(out)
        g.service(out, "svc%d" % i)
        size += sum(len(s) for s in out[start:])
        i += 1
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(out))
    print("%s: %d bytes, %d services" % (a.out, size, i), file=sys.stderr)


if __name__ == "__main__":
    main()
