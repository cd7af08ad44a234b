#!/usr/bin/env node
// SPDX-License-Identifier: MIT (see LICENSE)
// node_parse.js: the Node.js JSON peer of `reactcfg-bench parse`, run on the same file.
// `node node_parse.js [--iterations N] FILE` prints the line reactcfg-bench prints:
//   format=json bytes=<n> parse_ms=<median ms> mb_per_s=<bytes / 1e6 / median s>
// Only JSON.parse of the text (already read and decoded) is timed, with the monotonic
// process.hrtime. One warm-up parse, which also sizes N (default: about 2 s worth, at
// least 5), then N parses. bytes is the file's size in bytes. V8 collects the previous
// trees when it decides to: forcing global.gc() before each parse (node --expose-gc)
// made JSON.parse of the 15 MB file 2.5 times slower here, since V8 then shrinks the
// heap and regrows it during the parse, so this peer does not force it.
'use strict';
const fs = require('fs');

const args = process.argv.slice(2);
let iterations = 0;
const i = args.indexOf('--iterations');
if (i >= 0) {
  iterations = Number(args[i + 1]);
  args.splice(i, 2);
  if (!(Number.isInteger(iterations) && iterations >= 1)) {
    console.error('node_parse.js: --iterations wants a positive number');
    process.exit(1);
  }
}
if (args.length !== 1) {
  console.error('usage: node node_parse.js [--iterations N] FILE');
  process.exit(1);
}
let raw;
try {
  raw = fs.readFileSync(args[0]);
} catch (e) {
  console.error('node_parse.js: ' + e.message);
  process.exit(1);
}
const text = raw.toString('utf8');

function timed() {
  const t0 = process.hrtime.bigint();
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    console.error('node_parse.js: ' + args[0] + ': ' + e.message);
    process.exit(1);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (v === undefined) process.exit(1); // keeps the result alive until the clock is read
  return ms;
}

const one = timed();
if (!iterations) iterations = Math.max(5, Math.min(10000, Math.floor(2000 / Math.max(one, 0.001))));
const ms = [];
for (let k = 0; k < iterations; k++) ms.push(timed());
ms.sort((a, b) => a - b);
const n = ms.length;
const med = n % 2 ? ms[n >> 1] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
console.log(`format=json bytes=${raw.length} parse_ms=${med.toFixed(3)} ` +
            `mb_per_s=${(raw.length / 1e6 / (med / 1e3)).toFixed(3)}`);
