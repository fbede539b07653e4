/**
 * A SIP phone of our own over TLS (SIPp here has no TLS): a node:tls connection from a chosen
 * loopback address, verified against the tests' throwaway CA, reading Content-Length framed
 * messages, with REGISTER (digest MD5) and replies built from a received request.
 */
import net from 'node:net';
import tls from 'node:tls';
import { DOMAIN } from './harness.js';
import { digestAuth, header } from './raw-sip.js';

export class TlsPhone {
  readonly received: string[] = [];
  /** CRLF keep-alive answers (RFC 5626 pongs) seen between messages. */
  pongs = 0;
  /** Appended to the Contact of REGISTER (e.g. RFC 5626 ;+sip.instance="...";reg-id=1). */
  contactParams = '';
  /** Messages not yet taken by next(). */
  private unread: string[] = [];
  private buf = '';
  private regCseq = 0;
  readonly callId: string;

  private constructor(
    readonly sock: tls.TLSSocket,
    readonly user: { username: string; password: string },
  ) {
    this.callId = `tls-reg-${user.username}-${sock.localPort}`;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        // Keepalive answers (CRLF) between messages.
        while (this.buf.startsWith('\r\n')) {
          this.buf = this.buf.slice(2);
          this.pongs++;
        }
        const end = this.buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const len = Number(header(this.buf.slice(0, end), 'content-length')[0] ?? '0');
        if (this.buf.length < end + 4 + len) return;
        const m = this.buf.slice(0, end + 4 + len);
        this.buf = this.buf.slice(end + 4 + len);
        this.received.push(m);
        this.unread.push(m);
      }
    });
    sock.on('error', () => {});
  }

  /** Connects from localAddress to 127.0.0.1:port and completes the handshake, trusting ca only. */
  static async connect(port: number, localAddress: string, ca: Buffer, user: { username: string; password: string }): Promise<TlsPhone> {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress });
    const sock = tls.connect({ socket: raw, host: '127.0.0.1', ca });
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', () => resolve());
      sock.once('error', reject);
    });
    return new TlsPhone(sock, user);
  }

  get host(): string {
    return this.sock.localAddress!;
  }
  get port(): number {
    return this.sock.localPort!;
  }
  get contact(): string {
    return `sip:${this.user.username}@${this.host}:${this.port};transport=tls`;
  }
  get fingerprint256(): string {
    return this.sock.getPeerCertificate().fingerprint256;
  }
  get closed(): boolean {
    return this.sock.destroyed;
  }

  send(text: string): void {
    this.sock.write(text);
  }

  /** The next unread message matching pred (earlier unread ones that do not match stay unread). */
  async next(pred: (m: string) => boolean = () => true, timeoutMs = 5000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = this.unread.findIndex(pred);
      if (i !== -1) return this.unread.splice(i, 1)[0]!;
      if (Date.now() > until) throw new Error(`${this.user.username}: no matching message over TLS within ${timeoutMs} ms; got: ${this.received.map((x) => x.split('\r\n')[0]).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private registerText(expires: number, auth: string, extra: string[]): string {
    const cseq = ++this.regCseq;
    return [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/TLS ${this.host}:${this.port};branch=z9hG4bK-reg-${this.port}-${cseq}`,
      'Max-Forwards: 70',
      `From: <sip:${this.user.username}@${DOMAIN}>;tag=r${this.port}`,
      `To: <sip:${this.user.username}@${DOMAIN}>`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <${this.contact}>${this.contactParams}`,
      ...(auth ? [`Authorization: ${auth}`] : []),
      ...extra,
      `Expires: ${expires}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  }

  /** REGISTER, answer the 401, resolve with the final response. */
  async register(expires = 300, extra: string[] = []): Promise<string> {
    const isReg = (m: string) => m.startsWith('SIP/2.0') && /CSeq: \d+ REGISTER/i.test(m);
    this.send(this.registerText(expires, '', extra));
    const challenge = await this.next(isReg);
    if (!challenge.startsWith('SIP/2.0 401')) return challenge;
    const offer = header(challenge, 'www-authenticate')[0]!;
    this.send(this.registerText(expires, digestAuth(this.user, offer, 'REGISTER', `sip:${DOMAIN}`, 'MD5'), extra));
    return this.next(isReg);
  }

  /** A response to the request req (Via, From, To, Call-ID, CSeq copied; To tag added when given). */
  reply(req: string, status: string, opts: { toTag?: string; recordRoute?: boolean; contact?: boolean; body?: string } = {}): void {
    const to = header(req, 'to')[0]!;
    const body = opts.body ?? '';
    this.send(
      [
        `SIP/2.0 ${status}`,
        ...header(req, 'via').map((v) => `Via: ${v}`),
        ...(opts.recordRoute ? header(req, 'record-route').map((r) => `Record-Route: ${r}`) : []),
        `From: ${header(req, 'from')[0]}`,
        `To: ${opts.toTag && !/;tag=/.test(to) ? `${to};tag=${opts.toTag}` : to}`,
        `Call-ID: ${header(req, 'call-id')[0]}`,
        `CSeq: ${header(req, 'cseq')[0]}`,
        ...(opts.contact ? [`Contact: <${this.contact}>`] : []),
        ...(body ? ['Content-Type: application/sdp'] : []),
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n'),
    );
  }

  close(): void {
    this.sock.destroy();
  }
}

export const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.11\r\ns=-\r\nc=IN IP4 127.0.0.11\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
