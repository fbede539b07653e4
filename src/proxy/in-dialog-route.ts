/**
 * In-dialog requests (To tag present) and ACKs for 2xx: loose routing along the route set
 * (RFC 3261 §16.4, §16.12). Only requests that carry our Record-Route are relayed: this is not
 * an open relay.
 */
import { parseNameAddr } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import { rewrite } from '../sip/serialize.js';
import { parseSessionExpires } from '../sip/session-expires.js';
import type { IncomingRequest } from '../transaction/request.js';
import { branchRequests } from './branch-requests.js';
import type { ProxyDeps } from './deps.js';
import { Fork, type BranchTarget } from './fork.js';
import { forwardEdits } from './forward-edits.js';
import type { Identity } from './identity.js';
import { localResponse, statelessResponse } from './local-response.js';
import { contactHop, nextHop } from './next-hop.js';
import { ourVia } from '../transport/via.js';

/**
 * An ACK (for a 2xx) is relayed statelessly (§16.11). Any other request gets its server
 * transaction once it is relayed; a refusal is stateless, so junk costs no state.
 */
export function routeInDialog(d: ProxyDeps, inc: IncomingRequest): void {
  const req = inc.req;
  const isAck = req.method === 'ACK';
  const routes = ourRoutes(req, d.identity);
  if (routes.popped === 0) {
    if (!isAck) d.send(inc.replyTo, statelessResponse(inc, d.ids, 404, 'Not Found (no route)'));
    return;
  }
  // No route beyond us: the Request-URI, a contact; one another instance owns goes through it
  // (the dialog began while the device was registered here, or through that instance).
  const hop = routes.nextRoute !== undefined ? { dest: nextHop(routes.nextRoute, d.location), route: undefined } : contactHop(req.uri, d.location);
  const dest = hop?.dest;
  const route = hop?.route;
  if (!dest) {
    if (!isAck) d.send(inc.replyTo, statelessResponse(inc, d.ids, 404, 'Not Found (no next hop)'));
    return;
  }
  // An ACK changes nothing the tracker keeps (its CSeq is its INVITE's): not announced.
  if (req.method !== 'ACK') {
    const refresh = req.method === 'INVITE' || req.method === 'UPDATE';
    d.events.inDialogRequest(inc.callId, inc.fromTag, inc.toTag, req.method, inc.cseq, refresh ? parseSessionExpires(req.header('session-expires')) : 0);
  }
  const fwd = forwardEdits(inc, routes.popped, d.config().domain);
  if (isAck) {
    // The ACK for a 2xx is forwarded statelessly; its Via branch derives from the upstream one.
    const via = ourVia(d.localFor(dest), `${d.ids.branchPrefix}a${inc.via.branch}`);
    d.send(dest, rewrite(req, `${req.method} ${req.uri} SIP/2.0`, `Via: ${via}\r\n${route ?? ''}`, fwd.edits, req.isAscii));
    return;
  }
  const tx = d.layer.createServer(inc);
  if (req.method === 'INVITE') tx.respond(100, localResponse(inc, d.ids, 100, 'Trying'));
  const target: BranchTarget = { uri: req.uri, dest, device: '', extension: '' };
  if (route !== undefined) target.route = route;
  new Fork(branchRequests(d, inc, fwd, false), tx, req.header('to') ?? '', [target], { ringTimeoutMs: 0, declineEndsCall: false }).start();
}

/** How many of the top Route entries are ours (one, or two after double record-routing), and the next one. */
export function ourRoutes(req: SipMessage, identity: Identity): { popped: number; nextRoute: string | undefined } {
  const routes = req.values('route');
  let popped = 0;
  while (popped < routes.length && identity.isOurUri(parseNameAddr(routes[popped]!)?.uri)) popped++;
  const nextRoute = popped < routes.length ? parseNameAddr(routes[popped]!)?.uri : undefined;
  return { popped, nextRoute };
}
