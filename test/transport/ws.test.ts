/**
 * WsTransport on its own, with the `ws` package as the peer: frames become messages with the
 * connection's endpoint as source, sends go back over that connection only, CRLF keepalives
 * are answered, the gate refuses, and a closed connection is announced (onConnectionClosed).
 */
import t from 'tap';
import { pino } from 'pino';
import WebSocket from 'ws';
import type { Endpoint } from '../../src/transport/endpoint.js';
import type { Listener, SourceGate } from '../../src/transport/transport.js';
import { WsTransport } from '../../src/transport/ws.js';

function listener(): Listener {
  return {
    spec: { transport: 'ws', host: '127.0.0.1', port: 0, url: 'ws://127.0.0.1:0' },
    bind: '127.0.0.1',
    local: { transport: 'ws', host: '127.0.0.1', port: 0 },
  };
}

interface Setup {
  ws: WsTransport;
  port: number;
  got: Array<{ data: string; source: Endpoint }>;
  closed: Endpoint[];
}

async function setup(t: { teardown(f: () => unknown): void }, gate?: SourceGate): Promise<Setup> {
  const got: Setup['got'] = [];
  const closed: Endpoint[] = [];
  const l = listener();
  const ws = new WsTransport('ws', [l], {
    log: pino({ level: 'silent' }),
    onMessage: (data, source) => got.push({ data: data.toString(), source }),
    onConnectionClosed: (remote) => closed.push(remote),
    ...(gate ? { gate } : {}),
  });
  await ws.start();
  t.teardown(() => ws.close());
  return { ws, port: l.local.port, got, closed };
}

function connect(port: number): Promise<{ c: WebSocket; got: string[] }> {
  const c = new WebSocket(`ws://127.0.0.1:${port}`, ['sip']);
  const got: string[] = [];
  c.on('message', (d) => got.push(d.toString()));
  return new Promise((resolve, reject) => {
    c.once('open', () => resolve({ c, got }));
    c.once('error', reject);
  });
}

const until = async (what: string, ok: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

t.test('a frame is a message from the connection; replies go back over it; close is announced', async (t) => {
  const s = await setup(t);
  t.not(s.port, 0, 'port 0 became the bound port');
  const { c, got } = await connect(s.port);
  c.send('OPTIONS sip:x SIP/2.0\r\n\r\n');
  c.send(Buffer.from('OPTIONS sip:y SIP/2.0\r\n\r\n'));
  await until('two messages', () => s.got.length === 2);
  t.equal(s.got[0]!.data, 'OPTIONS sip:x SIP/2.0\r\n\r\n', 'text frame');
  t.equal(s.got[1]!.data, 'OPTIONS sip:y SIP/2.0\r\n\r\n', 'binary frame');
  const source = s.got[0]!.source;
  t.match(source, { transport: 'ws', address: '127.0.0.1', port: Number });
  t.equal(s.ws.localFor(source).port, s.port, 'localFor: the listener the connection reached');

  s.ws.send(source, Buffer.from('SIP/2.0 200 OK\r\n\r\n'));
  await until('the reply', () => got.length === 1);
  t.equal(got[0], 'SIP/2.0 200 OK\r\n\r\n');

  c.send('\r\n\r\n');
  await until('the keepalive answer', () => got.length === 2);
  t.equal(got[1], '\r\n', 'CRLFCRLF answered with CRLF, not passed on');
  t.equal(s.got.length, 2);

  let failed = 0;
  s.ws.send({ transport: 'ws', address: '127.0.0.1', port: 1 }, Buffer.from('x'), () => failed++);
  t.equal(failed, 1, 'no connection to a destination: onError, never a connect');

  c.close();
  await until('the close', () => s.closed.length === 1);
  t.same({ ...s.closed[0]!, local: undefined }, { ...source, local: undefined }, 'the closed connection is announced by its endpoint');
  s.ws.send(source, Buffer.from('x'), () => failed++);
  t.equal(failed, 2, 'after the close nothing reaches it');
});

t.test('the gate refuses connections and messages', async (t) => {
  let admitConn = false;
  let admitMsg = true;
  const s = await setup(t, { admitConnection: () => admitConn, admit: () => admitMsg });
  await t.rejects(connect(s.port), 'a refused source gets no handshake');
  admitConn = true;
  const { c } = await connect(s.port);
  admitMsg = false;
  const closed = new Promise<number>((r) => c.once('close', (code) => r(code)));
  c.send('OPTIONS sip:x SIP/2.0\r\n\r\n');
  t.equal(await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 2000))]), 1006, 'the connection is cut');
  t.equal(s.got.length, 0, 'a refused message is not passed on, and its connection is closed');
});
