/** Small helpers for tests that speak SIP with their own sockets (what SIPp cannot play). */
import { createHash } from 'node:crypto';

/** Values of a header (long name, lower case) in a message's text. */
export function header(msg: string, name: string): string[] {
  const out: string[] = [];
  for (const line of msg.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === name) out.push(line.slice(i + 1).trim());
  }
  return out;
}

function param(v: string, name: string): string {
  const m = new RegExp(`${name}="?([^",]+)"?`).exec(v);
  return m ? m[1]! : '';
}

export function digestAuth(device: { username: string; password: string }, challenge: string, method: string, uri: string, alg: 'SHA-256' | 'MD5'): string {
  const h = (s: string) => createHash(alg === 'MD5' ? 'md5' : 'sha256').update(s).digest('hex');
  const realm = param(challenge, 'realm');
  const nonce = param(challenge, 'nonce');
  const cnonce = 'c0ffee';
  const nc = '00000001';
  const ha1 = h(`${device.username}:${realm}:${device.password}`);
  const ha2 = h(`${method}:${uri}`);
  const response = h(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${device.username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=${alg}, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
}


/** A UDP endpoint that collects every message it receives. */
export class UdpPeer {
  readonly received: string[] = [];
  private constructor(readonly sock: import('node:dgram').Socket, readonly host: string, readonly port: number) {
    sock.on('message', (m) => this.received.push(m.toString('utf8')));
  }

  static async open(host: string): Promise<UdpPeer> {
    const dgram = await import('node:dgram');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, host, () => resolve()));
    return new UdpPeer(sock, host, sock.address().port);
  }

  send(text: string, port: number, host = '127.0.0.1'): void {
    this.sock.send(text, port, host);
  }

  /** The first received message (past or future) matching pred, within timeoutMs. */
  async next(pred: (m: string) => boolean, timeoutMs = 5000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = this.received.find(pred);
      if (m !== undefined) return m;
      if (Date.now() > until) throw new Error(`no matching message within ${timeoutMs} ms; got: ${this.received.map((x) => x.split('\r\n')[0]).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.sock.close();
  }
}

/** Join header lines into a message with Content-Length. */
export function sipMessage(lines: string[], body = ''): string {
  return [...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

/** A TCP connection that frames what it receives (Content-Length) and collects every message. */
export class TcpPeer {
  readonly received: string[] = [];
  private buf = '';
  private constructor(readonly sock: import('node:net').Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        // An RFC 5626 keepalive pong (CRLF) between messages is no message.
        while (this.buf.startsWith('\r\n')) this.buf = this.buf.slice(2);
        const end = this.buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const len = Number(header(this.buf.slice(0, end), 'content-length')[0] ?? '0');
        if (this.buf.length < end + 4 + len) return;
        this.received.push(this.buf.slice(0, end + 4 + len));
        this.buf = this.buf.slice(end + 4 + len);
      }
    });
    sock.on('error', () => {});
  }

  /** Connects from localAddress (any port) to host:port. */
  static async connect(host: string, port: number, localAddress: string): Promise<TcpPeer> {
    const net = await import('node:net');
    const sock = net.connect({ host, port, localAddress });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    return new TcpPeer(sock);
  }

  get host(): string {
    return this.sock.localAddress!;
  }

  get port(): number {
    return this.sock.localPort!;
  }

  send(text: string): void {
    this.sock.write(text);
  }

  /** The first received message (past or future) matching pred, within timeoutMs. */
  async next(pred: (m: string) => boolean, timeoutMs = 5000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = this.received.find(pred);
      if (m !== undefined) return m;
      if (Date.now() > until) throw new Error(`no matching message over TCP within ${timeoutMs} ms; got: ${this.received.map((x) => x.split('\r\n')[0]).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
