/** The command line as an operator uses it: `sipbob check` exit codes and messages. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressScope } from '../../src/transport/addresses.js';
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

t.test('check: warnings where phones could not reach the listeners, with file, line and key; still exit 0', async (t) => {
  const file = join(dir, 'reach.yaml');
  writeFileSync(
    file,
    ['domain: pbx.example.com', 'listen:', '  - udp://127.0.0.1:5060', '  - tcp://0.0.0.0:5060', 'extensions: []', ''].join('\n'),
  );
  const r = run('check', '--config', file);
  t.equal(r.status, 0, 'warnings are not errors');
  t.match(r.stdout, /ok \(0 extensions\)/);
  t.match(r.stderr, `${file}:3: listen[0]: warning: udp://127.0.0.1:5060 is a loopback address: only this host can reach it`);
  // 0.0.0.0 without advertise: a warning exactly when this machine has no public IPv4 address.
  const publicV4 = Object.values(networkInterfaces())
    .flat()
    .some((a) => a?.family === 'IPv4' && addressScope(a.address) === 'public');
  if (publicV4) t.notMatch(r.stderr, /listen\[1\]/, 'this machine has a public IPv4 address: Via names it, no warning');
  else t.match(r.stderr, `${file}:4: listen[1]: warning: tcp://0.0.0.0:5060 without advertise`, 'only private or loopback addresses here: warned');

  const adv = join(dir, 'advertise.yaml');
  writeFileSync(adv, ['domain: pbx.example.com', 'listen: [udp://0.0.0.0:5060]', 'advertise: 127.0.0.1', 'extensions: []', ''].join('\n'));
  const a = run('check', '--config', adv);
  t.equal(a.status, 0);
  t.match(a.stderr, `${adv}:3: advertise: warning: 127.0.0.1 is a loopback address`);
  t.notMatch(a.stderr, /listen\[0\]/, 'advertise wins over the listeners');

  const fine = join(dir, 'fine.yaml');
  writeFileSync(fine, ['domain: pbx.example.com', 'listen: [udp://0.0.0.0:5060]', 'advertise: 203.0.113.10', 'extensions: []', ''].join('\n'));
  const f = run('check', '--config', fine);
  t.equal(f.status, 0);
  t.equal(f.stderr, '', 'a public advertise: nothing to say');
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
