/**
 * Wildcard listeners over real sockets on loopback: one UDP socket per interface address, each
 * message named by the address it reached, replies leaving from that address; TCP named by
 * the accepted connection's own address. Interface lists are given (any 127.x binds on Linux),
 * except in the last test, which uses this machine's.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { Endpoint } from '../../src/transport/endpoint.js';
import type { InterfaceAddress } from '../../src/transport/interfaces.js';
import { interfaceAddresses } from '../../src/transport/interfaces.js';
import type { LocalAddress, ListenSpec } from '../../src/transport/transport.js';
import { Transports } from '../../src/transport/transports.js';

interface Got {
  data: string;
  source: Endpoint;
  local: LocalAddress;
}

const A = '127.0.0.61';
const B = '127.0.0.62';
const UNLISTED = '127.0.0.63';
const PEER = '127.0.0.71';

const IFACES: InterfaceAddress[] = [
  { address: A, family: 4, prefix: 8, internal: true },
  { address: B, family: 4, prefix: 8, internal: true },
];

const spec = (transport: 'udp' | 'tcp', host: string): ListenSpec => ({ transport, host, port: 0, url: `${transport}://${host}:0` });

function within<T>(p: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** routeSource 'kernel': ask this machine's routing table (the default); otherwise none, or the one given. */
async function registry(t: Test, listen: ListenSpec[], advertise?: string, interfaces?: () => InterfaceAddress[], routeSource?: 'kernel' | ((f: 4 | 6) => Promise<string | undefined>)) {
  const got: Got[] = [];
  let wake: (() => void) | undefined;
  const reg = new Transports(listen, advertise, pino({ level: 'silent' }), (data, source, local) => {
    got.push({ data: data.toString('latin1'), source, local });
    wake?.();
  }, { interfaces, routeSource: routeSource === 'kernel' ? undefined : (routeSource ?? (async () => undefined)) });
  t.teardown(() => reg.close());
  await reg.start();
  const next = async (): Promise<Got> => {
    const n = got.length;
    while (got.length === n) await within(new Promise<void>((r) => (wake = r)), 'a message');
    return got[got.length - 1]!;
  };
  return { reg, got, next };
}

async function udpPeer(t: Test, host: string, family: 'udp4' | 'udp6' = 'udp4'): Promise<dgram.Socket> {
  const s = dgram.createSocket(family);
  t.teardown(() => s.close());
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return s;
}

const msg = (n: number) => `OPTIONS sip:x SIP/2.0\r\nCall-ID: l${n}\r\nContent-Length: 0\r\n\r\n`;

t.test('UDP 0.0.0.0: one socket per address; a message is named by the address it reached and answered from it', async (t) => {
  const { reg, next } = await registry(t, [spec('udp', '0.0.0.0')], undefined, () => IFACES);
  t.same(reg.locals.map((l) => l.host), [A, B], 'one local per interface address');
  const port = reg.locals[0]!.port;
  t.equal(reg.locals[1]!.port, port, 'port 0: every address shares the port the first one got');

  const peer = await udpPeer(t, PEER);
  for (const [n, host] of [[1, A], [2, B]] as const) {
    peer.send(msg(n), port, host);
    const m = await next();
    t.equal(m.local.host, host, `arrived at ${host}: named ${host}`);
    t.equal(m.source.local, m.local, 'the source carries the listener');
    t.equal(reg.localFor(m.source), m.local, 'localFor the source: that listener');
    const back = once(peer, 'message');
    reg.send(m.source, Buffer.from(`reply ${n}`));
    const [data, rinfo] = (await within(back, 'the reply')) as [Buffer, dgram.RemoteInfo];
    t.equal(String(data), `reply ${n}`);
    t.equal(rinfo.address, host, `the reply leaves from ${host}`);
  }
  t.equal(reg.localFor({ transport: 'udp', address: PEER, port: 9 }).host, A, 'a destination without a listener of its own: chosen (loopback: the first)');

  // Decision: another 127.x no interface lists is not served over UDP (node cannot tell a
  // wildcard socket's destination address, and a reply from another address is dropped by
  // connected clients). The kernel refuses it; nothing arrives.
  const before = reg.locals.length;
  peer.send(msg(3), port, UNLISTED);
  const nothing = await Promise.race([next().then(() => 'arrived'), new Promise((r) => setTimeout(() => r('nothing'), 300))]);
  t.equal(nothing, 'nothing', `a datagram to ${UNLISTED} is not received`);
  t.equal(reg.locals.length, before);
});

t.test('UDP: a destination with no listener named leaves from the socket chosen for it; Via and source agree', async (t) => {
  const { reg } = await registry(t, [spec('udp', '0.0.0.0')], undefined, () => IFACES);
  // A device on this host at B (another port): B's own socket is chosen, not the first.
  const peer = await udpPeer(t, B);
  const dest: Endpoint = { transport: 'udp', address: B, port: peer.address().port };
  const local = reg.localFor(dest);
  t.equal(local.host, B);
  const got = once(peer, 'message');
  reg.send(dest, Buffer.from('hello'));
  const [, rinfo] = (await within(got, 'the datagram')) as [Buffer, dgram.RemoteInfo];
  t.equal(rinfo.address, B, 'sent from B, the address localFor named');

  const routed = await registry(t, [spec('udp', '0.0.0.0')], undefined, () => IFACES, async () => B);
  t.equal(routed.reg.localFor({ transport: 'udp', address: '198.51.100.7', port: 5060 }).host, B, 'off-link: the address the default route leaves from');
});

t.test('TCP 0.0.0.0: one server; a connection is named by the address it reached, also one no interface lists', async (t) => {
  const { reg, next } = await registry(t, [spec('tcp', '0.0.0.0')], undefined, () => IFACES);
  t.same(reg.locals.map((l) => l.host), [A, B]);
  const port = reg.locals[0]!.port;
  for (const [n, host] of [[1, B], [2, UNLISTED]] as const) {
    const c = net.connect({ host, port, localAddress: PEER });
    t.teardown(() => c.destroy());
    await once(c, 'connect');
    c.write(msg(n));
    const m = await next();
    t.equal(m.local.host, host, `connected to ${host}: named ${host}`);
    t.equal(reg.localFor(m.source), m.local, 'localFor the source: its connection');
    if (host === B) t.equal(m.local, reg.locals[1], 'an interface address: its listener\'s local');
  }
});

t.test('TCP: an outgoing connection from a wildcard listener leaves from the address its Via names', async (t) => {
  const { reg } = await registry(t, [spec('tcp', '0.0.0.0')], undefined, () => IFACES, async () => B);
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  t.teardown(() => {
    for (const s of accepted) s.destroy();
    server.close();
  });
  await new Promise<void>((r) => server.listen(0, PEER, () => r()));
  const dest: Endpoint = { transport: 'tcp', address: PEER, port: (server.address() as net.AddressInfo).port };
  const local = reg.localFor(dest);
  reg.send(dest, Buffer.from(msg(1)));
  await within(once(server, 'connection'), 'the connection');
  t.equal(accepted[0]!.remoteAddress, local.host, `connected from ${local.host}`);
  t.equal(reg.localFor(dest), local, 'and localFor keeps naming that connection\'s end');
});

t.test('advertise wins over every address', async (t) => {
  const { reg, next } = await registry(t, [spec('udp', '0.0.0.0'), spec('tcp', '0.0.0.0')], 'pbx.example.com', () => IFACES);
  t.same(reg.locals.map((l) => `${l.transport}:${l.host}`), ['udp:pbx.example.com', 'udp:pbx.example.com', 'tcp:pbx.example.com', 'tcp:pbx.example.com']);
  const tcpPort = reg.locals[2]!.port;
  const c = net.connect({ host: UNLISTED, port: tcpPort });
  t.teardown(() => c.destroy());
  await once(c, 'connect');
  c.write(msg(1));
  t.equal((await next()).local.host, 'pbx.example.com', 'also for an address no interface lists');
});

t.test(':: stands for both families; IPv6 answered from its own address', async (t) => {
  const { reg, next } = await registry(t, [spec('udp', '::')], undefined, () => [
    { address: A, family: 4, prefix: 8, internal: true },
    { address: '::1', family: 6, prefix: 128, internal: true },
  ]);
  t.same(reg.locals.map((l) => l.host), [A, '::1']);
  const port = reg.locals[0]!.port;
  const p6 = await udpPeer(t, '::1', 'udp6');
  p6.send(msg(1), port, '::1');
  const m = await next();
  t.equal(m.local.host, '::1');
  const p4 = await udpPeer(t, PEER);
  p4.send(msg(2), port, A);
  t.equal((await next()).local.host, A);
});

t.test('this machine: 0.0.0.0 serves 127.0.0.1 and every non-loopback IPv4 address it has', async (t) => {
  const mine = interfaceAddresses(os.networkInterfaces()).filter((a) => a.family === 4);
  const { reg, next } = await registry(t, [spec('udp', '0.0.0.0')], undefined, undefined, 'kernel');
  t.same(reg.locals.map((l) => l.host), mine.map((a) => a.address));
  const other = mine.find((a) => !a.internal);
  if (other === undefined) return void t.skip('no non-loopback IPv4 address on this machine', () => {});
  t.not(reg.localFor({ transport: 'udp', address: '198.51.100.7', port: 5060 }).host, '127.0.0.1', 'off-link: never the loopback address');
  const peer = await udpPeer(t, other.address);
  peer.send(msg(1), reg.locals[0]!.port, other.address);
  const m = await next();
  t.equal(m.local.host, other.address, `named ${other.address}, not 127.0.0.1`);
});
