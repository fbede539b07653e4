/** Real UDP and TCP transports on loopback (ports chosen by the kernel). */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { Endpoint } from '../../src/transport/endpoint.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import type { Listener, LocalAddress, Transport, TransportContext } from '../../src/transport/transport.js';
import { Transports } from '../../src/transport/transports.js';
import { UdpTransport } from '../../src/transport/udp.js';

const HOST = '127.0.0.1';

interface Received {
  data: string;
  source: Endpoint;
  local: LocalAddress;
}

/** A context that records messages and log lines, and wakes a waiter per message. */
function context(): { ctx: TransportContext; got: Received[]; logs: string[]; next: () => Promise<Received> } {
  const got: Received[] = [];
  const logs: string[] = [];
  let waiters: ((r: Received) => void)[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const ctx: TransportContext = {
    log: pino({ level: 'debug' }, sink),
    onMessage: (data, source, local) => {
      const r = { data: data.toString('latin1'), source, local };
      got.push(r);
      const w = waiters;
      waiters = [];
      for (const f of w) f(r);
    },
  };
  let seen = 0;
  const next = (): Promise<Received> =>
    seen < got.length ? Promise.resolve(got[seen++]!) : within(new Promise((res) => waiters.push(() => res(got[seen++]!))), 'a message');
  return { ctx, got, logs, next };
}

function listener(transport: 'udp' | 'tcp', host = HOST): Listener {
  return { spec: { transport, host, port: 0, url: `${transport}://${host}:0` }, bind: host, local: { transport, host, port: 0 } };
}

/** The fields of an endpoint that name it (a source also carries the listener it reached). */
const where = (e: Endpoint) => ({ transport: e.transport, address: e.address, port: e.port });

function sip(n: number, body = ''): string {
  return (
    `OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK${n}\r\nCall-ID: c${n}\r\nCSeq: ${n} OPTIONS\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** p, or a failure after ms: a missing message fails its test at once instead of hanging the file. */
function within<T>(p: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Reads a TCP socket until `want` bytes arrived. */
function readBytes(sock: net.Socket, want: number): Promise<string> {
  return within(
    (async () => {
      let s = '';
      while (s.length < want) {
        const [chunk] = (await once(sock, 'data')) as [Buffer];
        s += chunk.toString('latin1');
      }
      return s;
    })(),
    `${want} bytes`,
  );
}

/** A transport with one loopback listener on a port the kernel chooses, closed when the test ends. */
async function started<T extends Transport>(t: Test, make: new (listeners: Listener[], ctx: TransportContext) => T, name: 'udp' | 'tcp') {
  const c = context();
  const tr = new make([listener(name)], c.ctx);
  t.teardown(() => tr.close());
  await tr.start();
  return { tr, ...c };
}

t.test('UDP: a datagram in is a message from its source; send reaches the destination', async (t) => {
  const { tr: udp, next } = await started(t, UdpTransport, 'udp');
  t.same([udp.name, udp.viaToken, udp.reliable], ['udp', 'UDP', false]);
  const local = udp.locals[0]!;
  t.not(local.port, 0, 'port 0: local carries the bound port');

  const peer = dgram.createSocket('udp4');
  t.teardown(() => peer.close());
  await new Promise<void>((r) => peer.bind(0, HOST, () => r()));
  const peerPort = peer.address().port;
  peer.send(sip(1), local.port, HOST);
  const r = await next();
  t.equal(r.data, sip(1));
  t.same(where(r.source), { transport: 'udp', address: HOST, port: peerPort });
  t.equal(r.local, local, 'the listener it reached');
  t.equal(r.source.local, local, 'the source names it too');
  t.equal(udp.localFor(r.source), local);
  t.equal(udp.localFor({ transport: 'udp', address: '192.0.2.9', port: 5060 }), local, 'one listener: every destination');

  const reply = once(peer, 'message');
  udp.send(r.source, Buffer.from('SIP/2.0 200 OK\r\n\r\n'));
  const [data, rinfo] = (await within(reply, 'the datagram')) as [Buffer, dgram.RemoteInfo];
  t.equal(data.toString(), 'SIP/2.0 200 OK\r\n\r\n');
  t.equal(rinfo.port, local.port, 'sent from the listening socket');

  // With onError, a send that fails is reported (IPv6 destination on an IPv4 socket).
  let failed = false;
  await within(
    new Promise<void>((res) => {
      udp.send({ transport: 'udp', address: '::1', port: 9 }, Buffer.from('x'), () => {
        failed = true;
        res();
      });
    }),
    'onError',
  );
  t.ok(failed, 'onError heard the failure');
});

t.test('TCP: framed messages from an accepted connection; the reply reuses that connection', async (t) => {
  const { tr: tcp, next, got } = await started(t, TcpTransport, 'tcp');
  t.same([tcp.name, tcp.viaToken, tcp.reliable], ['tcp', 'TCP', true]);
  const local = tcp.locals[0]!;
  t.not(local.port, 0);

  const phone = net.connect({ host: HOST, port: local.port });
  t.teardown(() => phone.destroy());
  await once(phone, 'connect');
  // Two messages in one segment, the second split across two.
  const two = sip(1, 'hello') + sip(2);
  phone.write(two.slice(0, two.length - 10));
  const first = await next();
  phone.write(two.slice(two.length - 10));
  const second = await next();
  t.equal(first.data, sip(1, 'hello'));
  t.equal(second.data, sip(2));
  const source: Endpoint = { transport: 'tcp', address: HOST, port: phone.localPort! };
  t.same(where(first.source), source, 'source: the phone end of the connection');
  t.equal(first.local, local);
  t.equal(first.source.local, local);

  // Nobody listens at the phone's port: only the accepted connection can carry this.
  const reply = 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n';
  const read = readBytes(phone, reply.length);
  tcp.send({ ...source }, Buffer.from(reply));
  t.equal(await read, reply);

  // CRLF keep-alive ping is answered with a CRLF pong; no message is delivered.
  const pong = readBytes(phone, 2);
  phone.write('\r\n\r\n');
  t.equal(await pong, '\r\n');
  t.equal(got.length, 2);
});

t.test('TCP: a framing error closes the connection with a log line', async (t) => {
  const { tr: tcp, logs } = await started(t, TcpTransport, 'tcp');
  const phone = net.connect({ host: HOST, port: tcp.locals[0]!.port });
  t.teardown(() => phone.destroy());
  await once(phone, 'connect');
  const closed = once(phone, 'close');
  phone.write('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c\r\n\r\n'); // no Content-Length on a stream
  await within(closed, 'the close');
  t.ok(
    logs.some((l) => l.includes('closing tcp connection: bad framing') && l.includes('missing Content-Length')),
    'warned',
  );
});

t.test('TCP: an outgoing connection is opened once, and what comes back is framed with the right source', async (t) => {
  const { tr: tcp, next } = await started(t, TcpTransport, 'tcp');

  const accepted: net.Socket[] = [];
  const peer = net.createServer((s) => accepted.push(s));
  t.teardown(() => {
    for (const s of accepted) s.destroy();
    peer.close();
  });
  await new Promise<void>((r) => peer.listen(0, HOST, () => r()));
  const peerPort = (peer.address() as net.AddressInfo).port;
  const dest: Endpoint = { transport: 'tcp', address: HOST, port: peerPort };

  tcp.send(dest, Buffer.from(sip(1)));
  tcp.send({ ...dest }, Buffer.from(sip(2)));
  await within(once(peer, 'connection'), 'the connection');
  const conn = accepted[0]!;
  t.equal(await readBytes(conn, sip(1).length + sip(2).length), sip(1) + sip(2));
  t.equal(accepted.length, 1, 'one connection for both messages');

  conn.write(sip(3) + sip(4, 'body'));
  const a = await next();
  const b = await next();
  t.equal(a.data, sip(3));
  t.equal(b.data, sip(4, 'body'));
  t.same(where(a.source), dest, 'source: the endpoint we connected to');
  t.equal(a.local, tcp.locals[0], 'local: our TCP listener');
  t.equal(tcp.localFor(dest), tcp.locals[0], 'localFor: the connection\'s end');

  // A connection refused is reported to onError.
  const closedPort = await freePort();
  await within(
    new Promise<void>((res) => tcp.send({ transport: 'tcp', address: HOST, port: closedPort }, Buffer.from(sip(5)), res)),
    'onError',
  );
  t.pass('onError heard the refused connection');
});

t.test('registry: listeners by transport, localFor, send dispatched by dest.transport', async (t) => {
  const { ctx, next } = context();
  const reg = new Transports(
    [
      { transport: 'udp', host: HOST, port: 0, url: 'udp://127.0.0.1:0' },
      { transport: 'tcp', host: HOST, port: 0, url: 'tcp://127.0.0.1:0' },
    ],
    'sip.example.com',
    ctx.log,
    ctx.onMessage,
  );
  t.teardown(() => reg.close());
  await reg.start();
  t.same(
    reg.locals.map((l) => [l.transport, l.host]),
    [
      ['udp', 'sip.example.com'],
      ['tcp', 'sip.example.com'],
    ],
    'advertised host, configuration order',
  );
  const anywhere = (transport: 'udp' | 'tcp'): Endpoint => ({ transport, address: '192.0.2.9', port: 5060 });
  t.equal(reg.localFor(anywhere('udp')), reg.locals[0]);
  t.equal(reg.localFor(anywhere('tcp')), reg.locals[1]);

  const peer = dgram.createSocket('udp4');
  t.teardown(() => peer.close());
  await new Promise<void>((r) => peer.bind(0, HOST, () => r()));
  const got = once(peer, 'message');
  reg.send({ transport: 'udp', address: HOST, port: peer.address().port }, Buffer.from('udp datagram'));
  t.equal(String(((await within(got, 'the datagram')) as [Buffer])[0]), 'udp datagram');

  const phone = net.connect({ host: HOST, port: reg.locals[1]!.port });
  t.teardown(() => phone.destroy());
  phone.write(sip(7));
  const m = await next();
  t.equal(m.source.transport, 'tcp');
  t.equal(m.local, reg.locals[1]);
  const back = readBytes(phone, 5);
  reg.send(m.source, Buffer.from('hello'));
  t.equal(await back, 'hello', 'tcp dest: sent on the TCP transport');
});

t.test('registry: a transport with no listener fails the send at once', async (t) => {
  const { ctx } = context();
  const reg = new Transports([{ transport: 'udp', host: HOST, port: 0, url: 'udp://127.0.0.1:0' }], undefined, ctx.log, ctx.onMessage);
  t.teardown(() => reg.close());
  await reg.start();
  t.equal(reg.localFor({ transport: 'tcp', address: HOST, port: 9 }), reg.locals[0], 'localFor falls back to the first listener');
  let failed = false;
  reg.send({ transport: 'tcp', address: HOST, port: 9 }, Buffer.from('x'), () => (failed = true));
  t.ok(failed);
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, HOST, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
