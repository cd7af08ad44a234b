#!/usr/bin/env node
// SPDX-License-Identifier: MIT (see LICENSE)
// node_diff.js: the Node.js peer of `reactcfg-bench diff`, run on the same two files.
// `node node_diff.js [--iters N] OLD.json NEW.json` prints one line in the same format:
//   changes=<n> parse_ms=<median> diff_ms=<median>
// parse_ms is JSON.parse of both files (their text already read and decoded, so only the
// parse is timed); diff_ms is microdiff(old, new) alone. Both use the monotonic
// process.hrtime. One warm-up round, then at least 5 rounds and at least about 1 s.
// microdiff is found through NODE_PATH (scripts/bench installs it under the build dir).
'use strict';
const fs = require('fs');

let diff;
try {
  diff = require('microdiff').default;
} catch (e) {
  console.error('node_diff.js: cannot load microdiff (npm install microdiff, then set ' +
                'NODE_PATH to its node_modules): ' + e.message);
  process.exit(1);
}

const args = process.argv.slice(2);
let iters = 0;
if (args[0] === '--iters') {
  iters = Number(args[1]);
  args.splice(0, 2);
}
if (args.length !== 2 || !(iters >= 0)) {
  console.error('usage: node node_diff.js [--iters N] OLD.json NEW.json');
  process.exit(2);
}
const oldText = fs.readFileSync(args[0], 'utf8');
const newText = fs.readFileSync(args[1], 'utf8');

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function round() {
  let t0 = process.hrtime.bigint();
  const a = JSON.parse(oldText);
  const b = JSON.parse(newText);
  const parse = ms(t0);
  t0 = process.hrtime.bigint();
  const changes = diff(a, b);
  return { parse, diff: ms(t0), n: changes.length };
}

round(); // warm-up: lets V8 compile microdiff's hot loop
const parses = [], diffs = [];
let n = 0;
const start = process.hrtime.bigint();
for (let i = 0; iters ? i < iters : i < 5 || (ms(start) < 1000 && i < 1000); i++) {
  const r = round();
  parses.push(r.parse);
  diffs.push(r.diff);
  n = r.n;
}
console.log(`changes=${n} parse_ms=${median(parses).toFixed(3)} ` +
            `diff_ms=${median(diffs).toFixed(3)}`);
