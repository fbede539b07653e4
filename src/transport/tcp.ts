/** SIP over TCP (RFC 3261 §18.3): a plain stream (stream.ts does the work). */
import net from 'node:net';
import { TRANSPORTS } from './names.js';
import { StreamTransport, type ConnectTo } from './stream.js';
import type { Listener, TransportContext } from './transport.js';

export class TcpTransport extends StreamTransport {
  protected readonly readyEvent = 'connect';

  constructor(listeners: readonly Listener[], ctx: TransportContext) {
    super(TRANSPORTS.tcp, listeners, ctx);
  }

  protected createServer(onStream: (sock: net.Socket) => void): net.Server {
    return net.createServer(onStream);
  }

  protected connect(to: ConnectTo): net.Socket {
    return net.connect({ host: to.host, port: to.port, localAddress: to.localAddress });
  }
}
