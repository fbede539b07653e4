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
  // Flood and auth-failure bans: beside policy, under auth (which reports failures to it
  // through AuthFailures) and above transport (whose SourceGate it implements).
  security: 5,
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

/** Every import of a file (given with its text) that goes to a room not below its own. */
export function violations(sources: ReadonlyArray<[file: string, text: string]>): string[] {
  const out: string[] = [];
  for (const [file, text] of sources) {
    const from = roomOf(file);
    const rank = RANKS[from];
    if (rank === undefined) {
      out.push(`${path.relative(SRC, file)}: room "${from}" has no rank (add it to RANKS and README)`);
      continue;
    }
    for (const target of importsOf(file, text)) {
      const to = roomOf(target);
      if (to === from) continue;
      const r = RANKS[to];
      if (r === undefined || r >= rank) out.push(`${path.relative(SRC, file)} (${from}) imports ${path.relative(SRC, target)} (${to})`);
    }
  }
  return out;
}

t.test('every room imports only rooms below it', async (t) => {
  const all = files(SRC);
  t.ok(all.length > 30, 'the source tree was found');
  t.same(violations(all.map((f) => [f, readFileSync(f, 'utf8')])), [], 'no upward or sideways import');
});

t.test('the rule can fail', async (t) => {
  const sip = path.join(SRC, 'sip', 'parser.ts');
  const proxy = path.join(SRC, 'proxy', 'proxy.ts');
  const stores = path.join(SRC, 'calls', 'tracker.ts');
  t.same(violations([[sip, "import { Proxy } from '../proxy/proxy.js';"]]), ['sip/parser.ts (sip) imports proxy/proxy.ts (proxy)'], 'upward');
  t.same(violations([[stores, "import type { Directory } from '../directory/directory.js';"]]), ['calls/tracker.ts (calls) imports directory/directory.ts (directory)'], 'sideways between stores');
  t.same(violations([[proxy, "import { parseMessage } from '../sip/parser.js';\nconst m = await import('../calls/tracker.js');"]]), [], 'downward, static and dynamic');
  t.same(violations([[path.join(SRC, 'newroom', 'x.ts'), '']]), ['newroom/x.ts: room "newroom" has no rank (add it to RANKS and README)'], 'a room without a rank');
});
