/**
 * SIP over TLS (RFC 3261 §26.2, RFC 5630): the stream transport (stream.ts) over node:tls,
 * with the certificate of `tls.cert`/`tls.key`. A new certificate (SIGHUP after a renewal)
 * is swapped in with setSecureContext: open connections keep theirs, new ones get the new one.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { TlsMaterial } from '../lib/tls-files.js';
import { TRANSPORTS } from './names.js';
import { StreamTransport, type ConnectTo } from './stream.js';
import type { Listener, TransportContext } from './transport.js';

/** A handshake that has not finished by then is abandoned (a slow client holds no socket for long). */
const HANDSHAKE_MS = 10000;

export class TlsTransport extends StreamTransport {
  protected readonly readyEvent = 'secureConnect';
  private material: TlsMaterial;
  /** For outgoing connections (our certificate if a peer asks for one; the system's CAs). */
  private context: tls.SecureContext;

  constructor(listeners: readonly Listener[], ctx: TransportContext, material: TlsMaterial) {
    super(TRANSPORTS.tls, listeners, ctx);
    this.material = material;
    this.context = tls.createSecureContext({ cert: material.cert, key: material.key });
  }

  protected createServer(onStream: (sock: net.Socket) => void): net.Server {
    const server = tls.createServer({ cert: this.material.cert, key: this.material.key, handshakeTimeout: HANDSHAKE_MS }, onStream);
    // A client that fails its handshake (scanners, plain TCP on 5061) is closed by node; no log line each.
    server.on('tlsClientError', () => {});
    return server;
  }

  /**
   * Towards a peer we are not connected to (a trunk or Contact named by sips:/transport=tls):
   * its certificate is checked against the system's CAs and its IP address, as a phone would
   * check ours. Registered phones are reached over their own connection and never get here.
   */
  protected connect(to: ConnectTo): net.Socket {
    // node:tls takes no localAddress: the TCP connection is made first, then wrapped.
    const raw = net.connect({ host: to.host, port: to.port, localAddress: to.localAddress });
    const sock = tls.connect({ socket: raw, host: to.host, secureContext: this.context });
    raw.once('error', (err) => sock.destroy(err));
    return sock;
  }

  /** A renewed certificate: new connections are served with it, open ones are left alone. */
  setCertificate(material: TlsMaterial): void {
    this.material = material;
    this.context = tls.createSecureContext({ cert: material.cert, key: material.key });
    for (const s of this.servers) (s as tls.Server).setSecureContext({ cert: material.cert, key: material.key });
  }
}
