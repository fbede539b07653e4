/**
 * The transaction layer (RFC 3261 §17): matches requests to server transactions (§17.2.3) and
 * responses to client transactions (§17.1.3) and hands the rest to the transaction user.
 */
import type { SipMessage } from '../sip/message.js';
import type { Via } from '../sip/headers.js';
import type { Endpoint } from '../transport/transports.js';
import { ownString } from '../lib/own.js';
import { ClientTransaction, type ClientUser } from './client.js';
import { ServerTransaction, type TxEnv } from './server.js';
import { TimerQueue } from './timers.js';

const MAGIC = 'z9hG4bK';

/**
 * Server transaction key (§17.2.3): branch + sent-by + method, ACK matching INVITE. Requests
 * from RFC 2543 peers (no magic cookie) fall back to Call-ID, CSeq number, From tag and Via.
 */
export function serverKey(req: SipMessage, via: Via, cseq: number, fromTag: string): string {
  const method = req.method === 'ACK' ? 'INVITE' : req.method;
  if (via.branch.length > MAGIC.length && via.branch.startsWith(MAGIC)) {
    return `${via.branch}\n${via.host}:${via.port}\n${method}`;
  }
  return `2543\n${req.header('call-id') ?? ''}\n${cseq}\n${fromTag}\n${via.host}:${via.port}\n${via.branch}\n${method}`;
}

/**
 * Client transaction key (§17.1.3): branch + CSeq method. Our branches are ours and unique per
 * request, so an INVITE's key is its branch alone: the responses that come most (1xx, 2xx,
 * 487 to INVITE) are then looked up with the Via's branch as it is, not with a concatenation
 * V8 must copy out to hash. A branch is a token, so no other key can contain "\n".
 */
export function clientKey(branch: string, method: string): string {
  return method === 'INVITE' || method === 'ACK' ? branch : `${branch}\n${method}`;
}

export class TransactionLayer {
  readonly timers: TimerQueue;
  private servers = new Map<string, ServerTransaction>();
  private clients = new Map<string, ClientTransaction>();
  private readonly env: TxEnv;

  constructor(send: (dest: Endpoint, data: Buffer, onError?: () => void) => void, timers = new TimerQueue()) {
    this.timers = timers;
    this.env = {
      timers,
      send,
      terminated: (key, kind) => {
        if (kind === 'server') this.servers.delete(key);
        else this.clients.delete(key);
      },
    };
  }

  get inFlight(): number {
    return this.servers.size + this.clients.size;
  }

  findServer(key: string): ServerTransaction | undefined {
    return this.servers.get(key);
  }

  createServer(key: string, req: SipMessage, replyTo: Endpoint): ServerTransaction {
    // Lookup keys are built per message and thrown away; a stored one lives for 32 s after the
    // final response and must not keep the request's header text (its branch is a slice of it).
    const tx = new ServerTransaction(this.env, ownString(key), req, replyTo, req.method === 'INVITE');
    this.servers.set(tx.key, tx);
    return tx;
  }

  findClient(branch: string, method: string): ClientTransaction | undefined {
    return this.clients.get(clientKey(branch, method));
  }

  /** Create and start a client transaction for a request we built with a fresh branch. */
  sendRequest(
    branch: string,
    method: string,
    dest: Endpoint,
    data: Buffer,
    user: ClientUser,
    makeAck?: (res: SipMessage) => Buffer,
  ): ClientTransaction {
    // Kept for up to 32 s: a flat copy, not the caller's concatenation.
    const key = ownString(clientKey(branch, method));
    const tx = new ClientTransaction(this.env, key, method === 'INVITE', dest, data, user, makeAck);
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /** Stop every timer, for shutdown. */
  close(): void {
    this.timers.clear();
    this.servers.clear();
    this.clients.clear();
  }
}
