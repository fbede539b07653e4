/**
 * The proxy core (RFC 3261 §16) as the transaction user: hears what the transaction layer did
 * not absorb, answers REGISTER and OPTIONS to the proxy statelessly (the registrar), refuses
 * and challenges statelessly, keeps state for everything it routes, and hands routing to
 * initial-route.ts and in-dialog-route.ts.
 */
import { parseVia } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import { stripTopVia } from '../sip/serialize.js';
import { parseUri, type SipUri } from '../sip/uri.js';
import type { TransactionUser } from '../transaction/layer.js';
import type { IncomingRequest } from '../transaction/request.js';
import type { ServerTransaction } from '../transaction/server.js';
import { responseTarget } from '../transport/reply-target.js';
import type { ProxyDeps } from './deps.js';
import { ourRoutes, routeInDialog } from './in-dialog-route.js';
import { routeRelay } from './relay-route.js';
import { routeInitial } from './initial-route.js';
import { localResponse, statelessResponse, type LocalAnswer } from './local-response.js';
import { isLoop } from './loop-detection.js';
import { checkRequest } from './request-checks.js';

const ALLOW = 'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK, NOTIFY, REFER, MESSAGE';
const LOOP_DETECTED: LocalAnswer = { status: 482, reason: 'Loop Detected' };

export class Proxy implements TransactionUser {
  constructor(private readonly d: ProxyDeps) {}

  /**
   * Every refusal here is stateless (as Kamailio's sl): a request gets a server transaction,
   * a timer and a 100 Trying only once it is routed, which for a new call means after it was
   * authenticated (or came from a trunk). A flood of unauthenticated requests keeps nothing.
   */
  request(inc: IncomingRequest): void {
    const d = this.d;
    const req = inc.req;
    const ruri = parseUri(req.uri);
    const uriIsOurs = ruri !== undefined && ruri.scheme !== 'tel' && d.identity.isOurHost(ruri.host);
    // REGISTER and OPTIONS to the proxy itself are answered statelessly, as Kamailio's
    // registrar does with sl: both are idempotent, a retransmission is simply answered again,
    // and no transaction is kept for 64*T1 per request. An OPTIONS naming a user is routed like
    // an INVITE to that number (challenged first), so an OPTIONS sweep cannot tell which
    // extensions exist (svwar -m OPTIONS).
    const forUs = inc.toTag === '' && (req.method === 'REGISTER' || (req.method === 'OPTIONS' && uriIsOurs && ruri.user === ''));
    if (forUs) return this.answerLocally(inc, ruri, uriIsOurs);

    const refused = checkRequest(inc, ruri) ?? (isLoop(inc, d.ids.branchPrefix) ? LOOP_DETECTED : undefined);
    if (refused) return this.answer(inc, refused);
    if (inc.toTag !== '') return routeInDialog(d, inc);
    switch (req.method) {
      case 'INVITE':
      case 'MESSAGE':
      case 'OPTIONS':
        // Another instance's branch to a contact registered here carries our Route on top.
        if (d.peers.isPeer(inc.source)) {
          const popped = ourRoutes(req, d.identity).popped;
          if (popped > 0) return routeRelay(d, inc, popped);
        }
        return routeInitial(d, inc, ruri!.user, uriIsOurs); // checkRequest refused a missing R-URI
      case 'BYE':
        return this.answer(inc, { status: 481, reason: 'Call/Transaction Does Not Exist' });
      default:
        return this.answer(inc, { status: 405, reason: 'Method Not Allowed', headers: [ALLOW] });
    }
  }

  ack(inc: IncomingRequest): void {
    // The ACK for a final response we sent statelessly (a challenge, a refusal): absorbed.
    if (this.d.ids.isOurTag(inc.toTag)) return;
    routeInDialog(this.d, inc);
  }

  /** Only a CANCEL that finds its INVITE gets a transaction; the rest get a stateless 481. */
  cancel(inc: IncomingRequest, invite: ServerTransaction | undefined): void {
    const d = this.d;
    const ids = d.ids;
    if (!invite) return this.answer(inc, { status: 481, reason: 'Call/Transaction Does Not Exist' });
    d.layer.createServer(inc).respond(200, localResponse(inc, ids, 200, 'OK'));
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
    const req = inc.req;
    const refused = checkRequest(inc, ruri);
    if (refused) return this.answer(inc, refused);
    if (req.method === 'OPTIONS') return this.answer(inc, { status: 200, reason: 'OK', headers: [ALLOW, 'Accept: application/sdp'] });
    if (!uriIsOurs) return this.answer(inc, { status: 403, reason: 'Forbidden (not our domain)' });
    const require = req.header('require');
    if (require !== undefined) return this.answer(inc, { status: 420, reason: 'Bad Extension', headers: [`Unsupported: ${require}`] });
    const r = d.registrar.register(req, inc.source, inc.via);
    this.answer(inc, r);
  }

  /** Answer statelessly with a response generated here (not only refusals: the registrar's 200 too). */
  private answer(inc: IncomingRequest, r: LocalAnswer): void {
    this.d.send(inc.replyTo, statelessResponse(inc, this.d.ids, r.status, r.reason, r.headers));
  }
}
