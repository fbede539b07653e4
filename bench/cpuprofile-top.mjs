#!/usr/bin/env node
// Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time and
// the sipbob functions with the most inclusive time, as shares of the non-idle time.
// Usage: node bench/cpuprofile-top.mjs FILE.cpuprofile [ROWS]
import { readFileSync } from 'node:fs';

const [file, rowsArg] = process.argv.slice(2);
const rows = Number(rowsArg ?? 25);
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const name = (n) => {
  const cf = n.callFrame;
  const url = cf.url.split('/').slice(-2).join('/');
  return `${cf.functionName || '(anonymous)'} ${url}:${cf.lineNumber + 1}`;
};
const self = new Map();
const incl = new Map();
let total = 0;
let idle = 0;
p.samples.forEach((id, i) => {
  const dt = p.timeDeltas[i] ?? 0;
  const n = byId.get(id);
  total += dt;
  if (n.callFrame.functionName === '(idle)') {
    idle += dt;
    return;
  }
  self.set(name(n), (self.get(name(n)) ?? 0) + dt);
  // inclusive: count each function once per sample (recursion)
  const seen = new Set();
  for (let x = id; x !== undefined; x = parent.get(x)) {
    const nm = name(byId.get(x));
    if (!seen.has(nm)) incl.set(nm, (incl.get(nm) ?? 0) + dt), seen.add(nm);
  }
});
const busy = total - idle;
const pct = (v) => ((100 * v) / busy).toFixed(1).padStart(5) + '%';
console.log(`profile ${file}: ${(busy / 1e3).toFixed(0)} ms busy of ${(total / 1e3).toFixed(0)} ms`);
console.log('-- self time');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(pct(v), k);
console.log('-- inclusive time, sipbob code (dist/src)');
const ours = /^(sip|transport|transaction|proxy|registrar|calls|policy|state|config|http)\/|^src\//;
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).filter(([k]) => ours.test(k.split(' ').pop())).slice(0, rows)) {
  console.log(pct(v), k);
}
