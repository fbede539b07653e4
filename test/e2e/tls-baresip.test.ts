/**
 * A real softphone over TLS: Debian's baresip, with a throwaway config dir (-f) whose account
 * registers over TLS through an outbound proxy (the tls:// listener), with the test's CA as its
 * sip_cafile (baresip 1.0.0 loads it but does not verify the server: it has no
 * sip_verify_server yet, so this test does not claim a verified handshake). A SIPp trunk call
 * rings it: the 180 the caller gets can only come from baresip, and baresip's SIP trace (-s)
 * shows the INVITE over TLS. The caller gives up while it rings (no media needed). Skipped
 * when /usr/bin/baresip is absent.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assertExit, call, contactsOf, portBlock, startProxy, waitFor, type ApiExtension } from './harness.js';
import { makeCa, makeCert } from '../support/test-certs.js';

const BARESIP = '/usr/bin/baresip';
if (!existsSync(BARESIP)) {
  t.plan(0, `${BARESIP} is missing (install Debian's baresip package)`);
  process.exit(0);
}

// Block 21 and 22 are cluster-routing's (issue 14); 30 and 31 are this file and outbound-restart.
const P = portBlock(30);
const TLS_PORT = P.sip + 1;
const PHONE_HOST = '127.0.0.84';
const TRUNK_HOST = '127.0.0.85';
const DEV = { username: 'bert-bare', password: 'bare-pw-8401' };
const EXT = '410';

const ca = makeCa();
const cert = makeCert(ca, 'proxy');
const proxy = await startProxy({
  sipPort: P.sip,
  httpPort: P.http,
  listen: [`udp://127.0.0.1:${P.sip}`, `tls://127.0.0.1:${TLS_PORT}`],
  tls: { cert: cert.certFile, key: cert.keyFile },
  extensions: [{ number: EXT, name: 'Bert Bare', busyOnBusy: true, devices: [DEV] }],
  trunks: [{ name: 'carrier', address: TRUNK_HOST }],
});

const dir = mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-baresip-'));
writeFileSync(
  path.join(dir, 'config'),
  [
    'poll_method epoll',
    `sip_listen ${PHONE_HOST}:${P.base + 1}`,
    `sip_cafile ${ca.certFile}`,
    'module_path /usr/lib/baresip/modules',
    'module g711.so',
    'module_app account.so',
    '',
  ].join('\n'),
);
writeFileSync(
  path.join(dir, 'accounts'),
  `<sip:${DEV.username}@pbx.example.test;transport=tls>;auth_pass=${DEV.password};outbound="sip:127.0.0.1:${TLS_PORT};transport=tls";regint=300\n`,
);

let out = '';
// HOME too points into the throwaway dir, so nothing of baresip's lands in the user's home
// (CI may run with a HOME that is not writable).
const bare = spawn(BARESIP, ['-f', dir, '-s', '-t', '120'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } });
bare.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
bare.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
const bareExited = new Promise<void>((r) => bare.once('exit', () => r()));
process.on('exit', () => bare.kill('SIGKILL'));

t.teardown(async () => {
  bare.kill('SIGTERM');
  const killer = setTimeout(() => bare.kill('SIGKILL'), 3000);
  await bareExited;
  clearTimeout(killer);
  await proxy.stop();
  rmSync(dir, { recursive: true, force: true });
  ca.remove();
});

t.test('baresip registers over TLS and is rung by a SIPp trunk call', async (t) => {
  const contacts = await waitFor(
    'baresip bound',
    async () => {
      const c = await contactsOf(proxy, EXT, DEV.username);
      return c.length > 0 && c;
    },
    20_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\nbaresip output:\n${out.slice(-4000)}`);
  });
  t.match(contacts[0], /transport=tls/i, `baresip's contact is a TLS one: ${contacts[0]}`);
  const ext = await proxy.apiJson<ApiExtension>(`/api/extensions/${EXT}`);
  t.match(ext.devices[0]!.registrations[0]!.transport, /tls/i, 'the binding was made over TLS');

  const r = await call({ scenario: 'caller-cancel.xml', local: TRUNK_HOST, localPort: P.base + 10, remote: proxy.remote, to: EXT, timeoutSec: 30 });
  assertExit(t, r, 0, 'the caller heard baresip ring (180) and cancelled');
  // -s prints each message under a line "TLS <from> -> <to>": the INVITE and the CANCEL came from
  // the tls:// listener over the connection baresip opened (no new connection towards its contact).
  const fromProxy = new RegExp(`TLS 127\\.0\\.0\\.1:${TLS_PORT} -> [0-9.]+:\\d+\\r?\\n(INVITE|CANCEL) sip:${DEV.username}`, 'g');
  t.same([...out.matchAll(fromProxy)].map((m) => m[1]), ['INVITE', 'CANCEL'], "baresip's SIP trace: the INVITE and the CANCEL over TLS from the proxy");
});
