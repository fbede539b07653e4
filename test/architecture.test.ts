/**
 * The import rule of README's architecture section: a room imports only rooms below it (or
 * itself). Upward, a room is reached through the events and callbacks it defines.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Rank of each room (top-level folder of src/, or a file at its root). Lower is below. */
export const RANKS: Readonly<Record<string, number>> = {
  lib: 0,
  log: 0,
  sip: 1,
  transport: 2,
  config: 3,
  transaction: 4,
  location: 5,
  calls: 5,
  directory: 5,
  policy: 5,
  auth: 6,
  registrar: 7,
  proxy: 8,
  state: 9,
  metrics: 9,
  http: 9,
  'app.ts': 10,
  'cli.ts': 11,
};

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function roomOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0]!;
}

/** Relative imports (static, dynamic and re-exports) of a source file, resolved to files under src/. */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g;
  for (const m of text.matchAll(re)) out.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  return out;
}

t.test('every room imports only rooms below it', async (t) => {
  const violations: string[] = [];
  const all = files(SRC);
  t.ok(all.length > 30, 'the source tree was found');
  for (const file of all) {
    const from = roomOf(file);
    const rank = RANKS[from];
    if (rank === undefined) {
      violations.push(`${path.relative(SRC, file)}: room "${from}" has no rank (add it to RANKS and README)`);
      continue;
    }
    for (const target of importsOf(file, readFileSync(file, 'utf8'))) {
      const to = roomOf(target);
      if (to === from) continue;
      const r = RANKS[to];
      if (r === undefined || r >= rank) violations.push(`${path.relative(SRC, file)} (${from}) imports ${path.relative(SRC, target)} (${to})`);
    }
  }
  t.same(violations, [], 'no upward or sideways import');
});

t.test('the rule can fail', async (t) => {
  const file = path.join(SRC, 'sip', 'parser.ts');
  const [target] = importsOf(file, "import { Proxy } from '../proxy/proxy.js';");
  t.equal(roomOf(target!), 'proxy');
  t.ok(RANKS.proxy! > RANKS.sip!, 'sip importing proxy would be reported');
});
