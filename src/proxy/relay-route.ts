/**
 * Several instances: the owner's side of a branch another instance forked. That instance sends
 * a new request (no To tag) for a contact this instance holds, with a Route naming us
 * (next-hop.ts ownerRoute); it is loose-routed to the device's own flow (its NAT binding or
 * connection), which only this instance can use, and record-routed (INVITE) so the dialog's
 * requests come back through here. The instance that forked authenticated the caller, decided
 * Busy on Busy and tracks the call: here there is no digest challenge, no Busy on Busy, no
 * call outcome and no confirmed dialog to announce.
 */
import type { IncomingRequest } from '../transaction/request.js';
import { branchRequests } from './branch-requests.js';
import type { ProxyDeps } from './deps.js';
import { Fork, type BranchTarget } from './fork.js';
import { forwardEdits } from './forward-edits.js';
import { localResponse, statelessResponse } from './local-response.js';

/**
 * popped: how many top Route entries are ours (ourRoutes). Only for a request from a peer
 * (ProxyDeps.peers): from anyone else a Route naming us buys no relay (proxy.ts).
 */
export function routeRelay(d: ProxyDeps, inc: IncomingRequest, popped: number): void {
  const req = inc.req;
  const b = d.location.byContactUri(req.uri);
  // Not ours (any more): unregistered, expired, or it moved to another instance since the
  // peer looked. Not relayed on to a third instance: the peer's own view will catch up.
  if (b === undefined || b.owner !== undefined) {
    d.send(inc.replyTo, statelessResponse(inc, d.ids, 480, 'Temporarily Unavailable (not registered here)'));
    return;
  }
  const isInvite = req.method === 'INVITE';
  const tx = d.layer.createServer(inc);
  if (isInvite) tx.respond(100, localResponse(inc, d.ids, 100, 'Trying'));
  const target: BranchTarget = { uri: req.uri, dest: b.dest, device: b.username, extension: b.extension };
  const host = branchRequests(d, inc, forwardEdits(inc, popped, d.config().domain), isInvite);
  // No ring timeout here: the forking instance has its own and CANCELs this branch through us.
  new Fork(host, tx, req.header('to') ?? '', [target], { ringTimeoutMs: 0, declineEndsCall: false }).start();
}
