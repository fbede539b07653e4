/**
 * The transaction layer (RFC 3261 §17): owns all matching. Requests are matched to server
 * transactions (§17.2.3: retransmissions absorbed, ACK for a non-2xx final response consumed,
 * CANCEL paired with its INVITE), responses to client transactions (§17.1.3); what matches
 * nothing goes up to the transaction user through the interface defined here.
 */
import { parseCSeq, responseBranch, type Via } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import type { Endpoint } from '../transport/endpoint.js';
import { ownString } from '../lib/own.js';
import { ClientTransaction, type ClientUser } from './client.js';
import type { TxEnv } from './env.js';
import type { IncomingRequest } from './request.js';
import { ServerTransaction } from './server.js';
import { TimerQueue } from './timer-queue.js';

const MAGIC = 'z9hG4bK';

/**
 * The transaction user (§16 proxy core, §10 registrar): hears what the layer does not absorb.
 * The layer never creates a server transaction for a new request on its own: the user decides
 * whether to answer statelessly or keep state.
 */
export interface TransactionUser {
  /** A request that matches no transaction and is neither ACK nor CANCEL. */
  request(inc: IncomingRequest): void;
  /** An ACK that matches no server transaction: the ACK for a 2xx, a transaction of its own (§13.2.2.4). */
  ack(inc: IncomingRequest): void;
  /**
   * A CANCEL (§9.2) that matches no transaction, with the INVITE transaction it names while
   * that exists. The user creates the CANCEL's own transaction (createServer) when it keeps
   * state; a CANCEL for nothing can be answered statelessly.
   */
  cancel(inc: IncomingRequest, invite: ServerTransaction | undefined): void;
  /** A 2xx to an INVITE whose client transaction is gone (RFC 6026: late 2xx of a forking race). */
  strayInvite2xx(res: SipMessage, branch: string): void;
}

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

/** The key of the INVITE a CANCEL names (§9.2): the CANCEL's key with the method replaced. */
function inviteKeyOf(cancelKey: string): string {
  return cancelKey.slice(0, cancelKey.lastIndexOf('\n') + 1) + 'INVITE';
}

/**
 * Client transaction key (§17.1.3): branch + CSeq method. Our branches are unique per request,
 * so an INVITE's key is its branch alone and the responses that come most are looked up with
 * the Via's branch as it is. A branch is a token, so no other key can contain "\n".
 */
export function clientKey(branch: string, method: string): string {
  return method === 'INVITE' || method === 'ACK' ? branch : `${branch}\n${method}`;
}

export class TransactionLayer {
  readonly timers: TimerQueue;
  private servers = new Map<string, ServerTransaction>();
  private clients = new Map<string, ClientTransaction>();
  private readonly env: TxEnv;
  private user: TransactionUser | undefined;

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

  /** The user above: set once at wiring, before the first message. */
  setUser(user: TransactionUser): void {
    this.user = user;
  }

  get inFlight(): number {
    return this.servers.size + this.clients.size;
  }

  /** §17.2.3: a request to its server transaction, or up to the user. */
  receiveRequest(inc: IncomingRequest): void {
    const req = inc.req;
    const key = serverKey(req, inc.via, inc.cseq, inc.fromTag);
    inc.key = key;
    const user = this.user!;
    const tx = this.servers.get(key);
    if (req.method === 'ACK') {
      if (tx) tx.ack(); // ACK for our non-2xx final response (§17.2.1)
      else user.ack(inc);
      return;
    }
    if (tx) return tx.retransmission();
    if (req.method === 'CANCEL') return user.cancel(inc, this.servers.get(inviteKeyOf(key)));
    user.request(inc);
  }

  /** §17.1.3: a response to its client transaction; a 2xx without one goes to the user. */
  receiveResponse(res: SipMessage): void {
    const branch = responseBranch(res);
    if (branch === undefined) return;
    const cseq = parseCSeq(res.header('cseq'));
    if (!cseq) return;
    const tx = this.clients.get(clientKey(branch, cseq.method));
    if (tx) return tx.receive(res);
    if (res.status >= 200 && res.status < 300 && cseq.method === 'INVITE') this.user!.strayInvite2xx(res, branch);
  }

  findServer(key: string): ServerTransaction | undefined {
    return this.servers.get(key);
  }

  /** A server transaction for a request the user keeps state for (its key as receiveRequest set it). */
  createServer(inc: Pick<IncomingRequest, 'key' | 'req' | 'replyTo'>): ServerTransaction {
    // Lookup keys are built per message and thrown away; a stored one lives for 32 s after the
    // final response and must not keep the request's header text (its branch is a slice of it).
    const tx = new ServerTransaction(this.env, ownString(inc.key), inc.req, inc.replyTo, inc.req.method === 'INVITE');
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
