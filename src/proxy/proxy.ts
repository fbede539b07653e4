/**
 * The proxy core (RFC 3261 §16) as the transaction user: hears what the transaction layer did
 * not absorb, answers REGISTER and OPTIONS to the proxy statelessly (the registrar), keeps
 * state for everything it routes, and hands routing to initial-route.ts and in-dialog-route.ts.
 */
import { parseVia } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import { stripTopVia } from '../sip/serialize.js';
import { parseUri, unescapeUser, type SipUri } from '../sip/uri.js';
import type { TransactionUser } from '../transaction/layer.js';
import type { IncomingRequest } from '../transaction/request.js';
import type { ServerTransaction } from '../transaction/server.js';
import { responseTarget } from '../transport/reply-target.js';
import type { ProxyDeps } from './deps.js';
import { routeInDialog } from './in-dialog-route.js';
import { routeInitial } from './initial-route.js';
import { localResponse, type LocalAnswer, type Responder } from './local-response.js';
import { isLoop } from './loop-detection.js';
import { checkRequest } from './request-checks.js';

const ALLOW = 'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK, NOTIFY, REFER, MESSAGE';
const LOOP_DETECTED: LocalAnswer = { status: 482, reason: 'Loop Detected' };

export class Proxy implements TransactionUser {
  constructor(private readonly d: ProxyDeps) {}

  request(inc: IncomingRequest): void {
    const d = this.d;
    const req = inc.req;
    const ruri = parseUri(req.uri);
    const uriIsOurs = ruri !== undefined && ruri.scheme !== 'tel' && d.identity.isOurHost(ruri.host);
    // REGISTER and OPTIONS to the proxy itself are answered statelessly, as Kamailio's
    // registrar does with sl: both are idempotent, a retransmission is simply answered again,
    // and no transaction is kept for 64*T1 per request.
    const forUs =
      inc.toTag === '' &&
      (req.method === 'REGISTER' || (req.method === 'OPTIONS' && uriIsOurs && (ruri.user === '' || !d.directory.extension(unescapeUser(ruri.user)))));
    if (forUs) return this.answerLocally(inc, ruri, uriIsOurs);

    const tx = d.layer.createServer(inc);
    if (req.method === 'INVITE') tx.respond(100, localResponse(inc, d.ids, 100, 'Trying'));
    const refused = checkRequest(inc, ruri) ?? (isLoop(inc, d.ids.branchPrefix) ? LOOP_DETECTED : undefined);
    if (refused) return this.answer(tx, inc, refused);
    if (inc.toTag !== '') return routeInDialog(d, inc, tx);
    switch (req.method) {
      case 'INVITE':
      case 'MESSAGE':
      case 'OPTIONS':
        return routeInitial(d, inc, tx, ruri!.user, uriIsOurs); // checkRequest refused a missing R-URI
      case 'BYE':
        return this.answer(tx, inc, { status: 481, reason: 'Call/Transaction Does Not Exist' });
      default:
        return this.answer(tx, inc, { status: 405, reason: 'Method Not Allowed', headers: [ALLOW] });
    }
  }

  ack(inc: IncomingRequest): void {
    routeInDialog(this.d, inc, undefined);
  }

  cancel(inc: IncomingRequest, tx: ServerTransaction, invite: ServerTransaction | undefined): void {
    const ids = this.d.ids;
    if (!invite) return tx.respond(481, localResponse(inc, ids, 481, 'Call/Transaction Does Not Exist'));
    tx.respond(200, localResponse(inc, ids, 200, 'OK'));
    const fork = invite.cancellable; // the fork, until it settled
    fork?.cancel();
    const req = invite.request; // set until the INVITE got its final response
    if (!fork && req !== undefined) invite.respond(487, localResponse({ ...inc, req }, ids, 487, 'Request Terminated'));
  }

  /** A late 2xx of ours still goes upstream (§16.7 step 10, RFC 6026). */
  strayInvite2xx(res: SipMessage, branch: string): void {
    if (!branch.startsWith(this.d.ids.branchPrefix)) return;
    const next = res.values('via')[1];
    const up = next ? parseVia(next) : undefined;
    if (up) this.d.send(responseTarget(up), stripTopVia(res));
  }

  /** REGISTER and OPTIONS addressed to the proxy: the registrar, or a keep-alive answer. */
  private answerLocally(inc: IncomingRequest, ruri: SipUri | undefined, uriIsOurs: boolean): void {
    const d = this.d;
    const reply: Responder = { respond: (_status, data) => d.send(inc.replyTo, data) };
    const req = inc.req;
    const refused = checkRequest(inc, ruri);
    if (refused) return this.answer(reply, inc, refused);
    if (req.method === 'OPTIONS') return this.answer(reply, inc, { status: 200, reason: 'OK', headers: [ALLOW, 'Accept: application/sdp'] });
    if (!uriIsOurs) return this.answer(reply, inc, { status: 403, reason: 'Forbidden (not our domain)' });
    const require = req.header('require');
    if (require !== undefined) return this.answer(reply, inc, { status: 420, reason: 'Bad Extension', headers: [`Unsupported: ${require}`] });
    const r = d.registrar.register(req, inc.source, inc.via);
    this.answer(reply, inc, r);
  }

  /** Answer with a response generated here (not only refusals: the registrar's 200 too). */
  private answer(to: Responder, inc: IncomingRequest, r: LocalAnswer): void {
    to.respond(r.status, localResponse(inc, this.d.ids, r.status, r.reason, r.headers));
  }
}
