/**
 * SIP over WebSocket (RFC 7118), plain (`ws`) and over TLS (`wss`, what browsers speak): an
 * HTTP(S) server per configured listener whose upgrades to subprotocol `sip` become
 * connections; every frame (text or binary) is one SIP message. Browsers cannot accept
 * connections, so a device on WebSocket is reached only over the connection it opened
 * (kept by the remote endpoint's key, like TCP); this transport never connects out.
 *
 * Untrusted peers are bounded as on TCP: connections per listener, frame size (the SIP
 * message limit), a handshake deadline, an idle deadline, and the source gate on the
 * upgrade and on every frame.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TlsMaterial } from '../lib/tls-files.js';
import { MAX_MESSAGE_SIZE } from '../sip/parser.js';
import { isWildcard } from './addresses.js';
import { acceptedLocal, Connections, listenerGroups, listenOn, normalizeAddress } from './connections.js';
import { endpointKey, type Endpoint } from './endpoint.js';
import { TRANSPORTS } from './names.js';
import { OPEN_GATE, type Listener, type LocalAddress, type Transport, type TransportContext } from './transport.js';

const MAX_WS_CONNECTIONS = 10000;
/** TCP connect, TLS handshake and HTTP upgrade together must be done by then. */
const WS_HANDSHAKE_MS = 10000;
/** As on TCP: a registered browser keeps its connection busy with re-REGISTERs or keepalives. */
const WS_IDLE_MS = 15 * 60 * 1000;
/** The subprotocol RFC 7118 §4.1 registers; a handshake without it is not SIP. */
const SUBPROTOCOL = 'sip';

interface Conn {
  ws: WebSocket;
  local: LocalAddress;
}

export class WsTransport implements Transport {
  readonly name: 'ws' | 'wss';
  readonly viaToken: string;
  readonly reliable = true;
  readonly locals: readonly LocalAddress[];
  private servers: (http.Server | https.Server)[] = [];
  private readonly conns: Connections<Conn>;
  /** One for every server: it only does the frame protocol; the upgrade checks are ours. */
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_SIZE,
    // Checked in onUpgrade before ws sees the request: here it only names the accepted one.
    handleProtocols: () => SUBPROTOCOL,
    // Browsers do not negotiate it reliably with every stack, and SIP messages are small.
    perMessageDeflate: false,
    clientTracking: false,
  });

  constructor(
    name: 'ws' | 'wss',
    private readonly listeners: readonly Listener[],
    private readonly ctx: TransportContext,
    /** wss only: reads (and checks) the certificate of config `tls`; a bad file fails start(). */
    private readonly certificate?: () => TlsMaterial,
  ) {
    this.name = name;
    this.viaToken = TRANSPORTS[name].viaToken;
    this.locals = listeners.map((l) => l.local);
    this.conns = new Connections(listeners, ctx);
  }

  async start(): Promise<void> {
    for (const group of listenerGroups(this.listeners)) await this.listen(group);
  }

  private listen(group: Listener[]): Promise<void> {
    const spec = group[0]!.spec;
    const secure = this.name === 'wss';
    let server: http.Server | https.Server;
    if (secure) {
      // Read (and checked) here so that a bad file stops the start, named by its config key.
      if (this.certificate === undefined) throw new Error(`${spec.url}: a wss listener needs tls.cert and tls.key`);
      const m = this.certificate();
      server = https.createServer({ cert: m.cert, key: m.key, handshakeTimeout: WS_HANDSHAKE_MS });
      // The TLS socket is the one the upgrade hands over: its deadline covers the HTTP part.
      server.on('secureConnection', (sock: TLSSocket) => sock.setTimeout(WS_HANDSHAKE_MS, () => sock.destroy()));
      server.on('tlsClientError', (_err, sock) => sock.destroy());
    } else {
      server = http.createServer();
      server.on('connection', (sock: net.Socket) => sock.setTimeout(WS_HANDSHAKE_MS, () => sock.destroy()));
    }
    server.maxConnections = MAX_WS_CONNECTIONS;
    // Only upgrades are served; anything else learns what this port is for.
    server.on('request', (_req, res) => {
      res.writeHead(426, { Upgrade: 'websocket', Connection: 'close' });
      res.end();
    });
    server.on('clientError', (_err, sock: Duplex) => sock.destroy());
    const wildcard = isWildcard(spec.host);
    server.on('upgrade', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => this.onUpgrade(req, sock as net.Socket, head, group, wildcard));
    server.on('error', (err) => this.ctx.log.warn({ err, listen: spec.url }, `${this.name} server error`));
    this.servers.push(server);
    return listenOn(server, group);
  }

  private onUpgrade(req: http.IncomingMessage, sock: net.Socket, head: Buffer, group: Listener[], wildcard: boolean): void {
    const address = normalizeAddress(sock.remoteAddress ?? '');
    if ((this.ctx.gate ?? OPEN_GATE).admitConnection(address) === false) return void sock.destroy();
    if (!offersSip(req.headers['sec-websocket-protocol'])) return refuse(sock, 400, 'Subprotocol sip required');
    if (this.conns.size >= MAX_WS_CONNECTIONS) return refuse(sock, 503, 'Too many connections');
    const local = wildcard ? acceptedLocal(this.name, group, normalizeAddress(sock.localAddress ?? '')) : group[0]!.local;
    const remote: Endpoint = { transport: this.name, address, port: sock.remotePort ?? 0, local };
    this.wss.handleUpgrade(req, sock, head, (ws) => {
      sock.setTimeout(WS_IDLE_MS, () => sock.destroy());
      this.adopt(ws, remote, local);
    });
  }

  private adopt(ws: WebSocket, remote: Endpoint, local: LocalAddress): void {
    const conn: Conn = { ws, local };
    // A peer reconnecting from the same address and port replaces the old connection.
    this.conns.get(remote)?.ws.terminate();
    const closed = this.conns.add(remote, conn);
    const onMessage = this.ctx.onMessage;
    const gate = this.ctx.gate ?? OPEN_GATE;
    ws.on('message', (data: Buffer) => {
      // A source banned now has the rest of its connection refused with it.
      if (!gate.admit(remote.address, data)) return void ws.terminate();
      // RFC 5626 §4.4.1 keepalive as sip.js and JsSIP send it in a frame: answered like on TCP.
      if (isCrlfOnly(data)) {
        if (data.length >= 4) ws.send('\r\n');
        return;
      }
      onMessage(data, remote, local);
    });
    // Too large a frame, a bad opcode, unmasked client frames: ws closes with 1009/1002 and we drop it.
    ws.on('error', (err) => {
      this.ctx.log.debug({ remote: endpointKey(remote), err: err.message }, `closing ${this.name} connection`);
      ws.terminate();
    });
    ws.on('close', closed);
  }

  localFor(dest: Endpoint): LocalAddress {
    return this.conns.localFor(dest);
  }

  /** Only over a connection the peer opened: a browser accepts none, so there is nothing to connect to. */
  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    const conn = this.conns.get(dest);
    if (conn === undefined || conn.ws.readyState !== 1) return onError?.();
    // Text frames: SIP is UTF-8 text and browser libraries read text frames as strings.
    conn.ws.send(data, { binary: false }, onError === undefined ? undefined : (err) => err && onError());
  }

  /** SIGHUP: a renewed certificate for new handshakes; open connections keep theirs. */
  setCertificate(m: TlsMaterial): void {
    for (const s of this.servers) if (s instanceof https.Server) s.setSecureContext({ cert: m.cert, key: m.key });
  }

  async close(): Promise<void> {
    for (const c of this.conns.values()) c.ws.terminate();
    this.conns.clear();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((r) => {
            s.close(() => r());
            s.closeAllConnections();
          }),
      ),
    );
    this.servers = [];
  }
}

/** Sec-WebSocket-Protocol is a comma-separated list (RFC 6455 §11.3.4); `sip` must be in it. */
function offersSip(header: string | undefined): boolean {
  if (header === undefined) return false;
  for (const p of header.split(',')) if (p.trim().toLowerCase() === SUBPROTOCOL) return true;
  return false;
}

function refuse(sock: net.Socket, status: number, reason: string): void {
  sock.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  sock.destroySoon?.();
}

function isCrlfOnly(data: Buffer): boolean {
  if (data.length === 0 || data.length > 4) return false;
  for (const b of data) if (b !== 13 && b !== 10) return false;
  return true;
}

