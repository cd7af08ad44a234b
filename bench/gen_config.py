#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""gen_config.py: writes a realistic JSON configuration of about N leaves and a second
version of it with about P% of the leaves modified plus a few keys added and removed,
for benchmarking parse and diff. Deterministic for a given seed. Stdlib only.

    gen_config.py --leaves 1000000 --change 1 --seed 1 OLD.json NEW.json

The shape: top-level sections, each a tree 3 to 6 levels deep of objects, arrays of
records (objects of the same shape) and arrays of scalars; leaves are strings (hosts,
URLs, names), integers (ports, timeouts, sizes), floats (ratios) and booleans. Output is
indented with 2 spaces, as configuration files usually are (about 36 bytes per leaf).
"""
import argparse
import json
import random
import sys

WORDS = ("timeout retries host port enabled name weight region zone replicas limit "
         "burst interval path url user pool size max min cache ttl level format target "
         "mode policy backoff ratio threshold queue worker shard index bucket key token "
         "endpoint protocol version owner team label tier priority window budget").split()
TLDS = ("internal", "example.com", "svc.cluster.local", "corp.net")
REGIONS = ("us-east-1", "us-west-2", "eu-central-1", "ap-south-1", "sa-east-1")


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.leaves = 0

    def key(self, taken):
        rng = self.rng
        while True:
            r = rng.random()
            if r < 0.6:
                k = rng.choice(WORDS)
            elif r < 0.9:
                k = rng.choice(WORDS) + "_" + rng.choice(WORDS)
            else:
                k = rng.choice(WORDS) + "_" + str(rng.randint(0, 99))
            if k not in taken:
                taken.add(k)
                return k

    def scalar(self, hint=None):
        rng = self.rng
        self.leaves += 1
        r = rng.random() if hint is None else hint
        if r < 0.30:
            s = rng.random()
            if s < 0.3:
                return "%s-%d.%s" % (rng.choice(WORDS), rng.randint(0, 99), rng.choice(TLDS))
            if s < 0.4:
                return "https://%s.%s/%s" % (rng.choice(WORDS), rng.choice(TLDS),
                                             rng.choice(WORDS))
            if s < 0.5:
                return rng.choice(REGIONS)
            return rng.choice(WORDS) + "-" + rng.choice(WORDS)
        if r < 0.65:
            return rng.choice((rng.randint(0, 10), rng.randint(0, 65535),
                               rng.randint(0, 10**6)))
        if r < 0.80:
            return round(rng.random() * rng.choice((1, 100, 10000)), rng.randint(1, 4))
        return rng.random() < 0.5

    def record_shape(self, n):
        """Keys and value kinds of a record type: arrays hold records of one shape."""
        taken = set()
        return [(self.key(taken), self.rng.random()) for _ in range(n)]

    def node(self, budget, depth, max_depth):
        """An object holding about `budget` leaves."""
        rng = self.rng
        taken = set()
        obj = {}
        if depth >= max_depth and budget > 40:
            # too much for one flat object: a list of records, as in `rules: [...]`
            obj[self.key(taken)] = self.node(8, depth + 1, max_depth)
            shape = self.record_shape(rng.randint(3, 8))
            obj[self.key(taken)] = [{k: self.scalar(h) for k, h in shape}
                                    for _ in range(max(1, (budget - 8) // len(shape)))]
            return obj
        if depth >= max_depth or budget <= 12:
            for _ in range(max(1, budget)):
                obj[self.key(taken)] = self.scalar()
            return obj
        # a few scalars directly here, the rest in children
        for _ in range(rng.randint(1, 4)):
            obj[self.key(taken)] = self.scalar()
            budget -= 1
        nchild = rng.randint(2, 6)
        for i in range(nchild):
            part = budget // (nchild - i)
            budget -= part
            r = rng.random()
            if r < 0.2 and depth >= 1 and part >= 8:
                shape = self.record_shape(rng.randint(3, 8))
                obj[self.key(taken)] = [
                    {k: self.scalar(h) for k, h in shape}
                    for _ in range(max(1, part // len(shape)))]
            elif r < 0.27 and part >= 4:
                hint = rng.random()
                obj[self.key(taken)] = [self.scalar(hint) for _ in range(min(part, 32))]
                if part > 32:
                    obj[self.key(taken)] = self.node(part - 32, depth + 1, max_depth)
            else:
                obj[self.key(taken)] = self.node(part, depth + 1, max_depth)
        return obj

    def config(self, leaves):
        rng = self.rng
        root = {}
        nsec = max(1, min(64, leaves // 2000))
        for i in range(nsec):
            budget = (leaves - self.leaves) // (nsec - i)
            root["section_%02d" % i] = self.node(budget, 1, rng.randint(2, 5))
        return root


def leaf_slots(v, out):
    """Every (container, key) holding a scalar, in document order."""
    items = v.items() if isinstance(v, dict) else enumerate(v)
    for k, x in items:
        if isinstance(x, (dict, list)):
            leaf_slots(x, out)
        else:
            out.append((v, k))


def object_slots(v, out):
    if isinstance(v, dict):
        out.append(v)
        for x in v.values():
            object_slots(x, out)
    elif isinstance(v, list):
        for x in v:
            object_slots(x, out)


def modify(g, cfg, percent):
    """Changes about `percent`% of the leaves in place, adds and removes a few keys."""
    rng = g.rng
    slots = []
    leaf_slots(cfg, slots)
    n = int(len(slots) * percent / 100.0)
    for c, k in rng.sample(slots, n):
        x = c[k]
        if isinstance(x, bool):
            c[k] = not x
        elif isinstance(x, int):
            c[k] = x + rng.randint(1, 100)
        elif isinstance(x, float):
            c[k] = round(x * 1.5 + 0.25, 4)
        else:
            c[k] = x + "-v2"
    objs = []
    object_slots(cfg, objs)
    few = max(1, n // 100)
    for o in rng.sample(objs, min(few, len(objs))):  # removals
        if len(o) > 1:
            del o[rng.choice(list(o.keys()))]
    for o in rng.sample(objs, min(few, len(objs))):  # additions
        o[g.key(set(o.keys()))] = g.scalar()
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--leaves", type=int, default=100000)
    ap.add_argument("--change", type=float, default=1.0, help="percent of leaves modified")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("old")
    ap.add_argument("new")
    a = ap.parse_args()
    g = Gen(a.seed)
    cfg = g.config(a.leaves)
    with open(a.old, "w") as f:
        json.dump(cfg, f, indent=2)
    n = modify(g, cfg, a.change)
    with open(a.new, "w") as f:
        json.dump(cfg, f, indent=2)
    print("%s: %d leaves; %s: %d modified" % (a.old, g.leaves, a.new, n), file=sys.stderr)


if __name__ == "__main__":
    main()
