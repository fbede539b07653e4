/** The command line as an operator uses it: `sipbob check` exit codes and messages. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'sipbob-cli-'));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20000 });

t.test('check: the embedded default config is valid', async (t) => {
  const r = run('check', '--config', 'config/sipbob.yaml');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /ok \(2 extensions\)/);
});

t.test('check: every error with file, line and key; exit 2', async (t) => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(
    file,
    [
      'domain: pbx.example.test',
      'listen: [udp://127.0.0.1:99999]',
      'extensions:',
      '  - number: "200"',
      '    devices:',
      '      - { username: anna, password: a }',
      '  - number: "200"',
      '    devcies: []',
      '',
    ].join('\n'),
  );
  const r = run('check', '--config', file);
  t.equal(r.status, 2);
  t.match(r.stderr, `${file}:2: listen[0]`, 'bad port named with its line');
  t.match(r.stderr, `${file}:7: extensions[1].number`, 'duplicate number named with its line');
  t.match(r.stderr, `${file}:8: extensions[1].devcies`, 'unknown key named with its line');
  t.notMatch(r.stderr, /password: a\b/, 'no password echoed');
});

t.test('SIPBOB_CONFIG picks the file; an unreadable file is exit 2', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'check'], { cwd: ROOT, encoding: 'utf8', timeout: 20000, env: { ...process.env, SIPBOB_CONFIG: join(dir, 'missing.yaml') } });
  t.equal(r.status, 2);
  t.match(r.stderr, /cannot read config/);
});

t.test('unknown arguments: usage and exit 64', async (t) => {
  const r = run('--frobnicate');
  t.equal(r.status, 64);
  t.match(r.stderr, /usage: sipbob/);
});
