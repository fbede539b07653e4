/**
 * Out-of-dialog INVITE (and MESSAGE/OPTIONS to a number): who calls (a trunk by address, or a
 * device by digest; only then does the request get its server transaction), which extension,
 * Busy on Busy, then a fork to the target set or out through the first trunk.
 */
import { decideNewCall } from '../policy/busy-on-busy.js';
import { tagOf } from '../sip/headers.js';
import { unescapeUser } from '../sip/uri.js';
import type { CallParty } from '../calls/active-call.js';
import type { IncomingRequest } from '../transaction/request.js';
import type { ServerTransaction } from '../transaction/server.js';
import { branchRequests } from './branch-requests.js';
import type { ProxyDeps } from './deps.js';
import { Fork, type BranchReport, type BranchTarget, type CallOutcomeName, type ForkOptions } from './fork.js';
import { forwardEdits } from './forward-edits.js';
import { localResponse, statelessResponse } from './local-response.js';
import { extensionTargets, trunkOf, trunkTarget } from './target-set.js';
import { callerSide, dialogEnds } from './dialog-ends.js';
import { nextHop } from './next-hop.js';
import { parseSessionExpires } from '../sip/session-expires.js';

const NO_BRANCHES: readonly BranchReport[] = [];

export function routeInitial(d: ProxyDeps, inc: IncomingRequest, rawUser: string, uriIsOurs: boolean): void {
  const cfg = d.config();
  const req = inc.req;
  const trunk = trunkOf(inc.source, cfg.trunks);
  let caller: CallParty | undefined;
  if (!trunk) {
    const a = d.auth.authenticate(req, 'proxy', inc.source.address);
    // The challenge is stateless (as Kamailio's sl): no transaction, timer or 100 Trying for a
    // request nobody vouched for; a retransmission is simply challenged again.
    if (!a.ok) return d.send(inc.replyTo, statelessResponse(inc, d.ids, a.status, a.reason, a.headers));
    caller = { extension: a.device.extension, device: a.device.username, direction: 'outbound' };
  }
  const tx = d.layer.createServer(inc);
  if (req.method === 'INVITE') tx.respond(100, localResponse(inc, d.ids, 100, 'Trying'));
  const number = unescapeUser(rawUser.split(';')[0]!);
  const ext = uriIsOurs || trunk ? d.directory.extension(number) : undefined;
  const outcome = (o: CallOutcomeName, status: number, branches: readonly BranchReport[] = NO_BRANCHES): void => {
    if (req.method !== 'INVITE') return;
    d.events.callOutcome({ callId: inc.callId, extension: ext?.number ?? number, from: caller?.device ?? trunk?.name ?? '', outcome: o, status, branches });
  };
  if (ext) {
    if (req.method === 'INVITE' && decideNewCall(d.directory.busyOnBusy(ext.number), d.calls.activeFor(ext.number)) === 'busy') {
      answer(d, inc, tx, 486, 'Busy Here');
      return outcome('busy-on-busy', 486);
    }
    const targets = extensionTargets(ext, caller?.device, d.location);
    if (targets.length === 0) {
      answer(d, inc, tx, 480, 'Temporarily Unavailable');
      return outcome('unavailable', 480);
    }
    const ringSec = ext.ringTimeout ?? cfg.calls.ringTimeout;
    return fork(d, inc, tx, targets, ringSec * 1000, ext.declineEndsCall, caller, outcome);
  }
  // Not an extension: a device may call out through the first trunk.
  const out = cfg.trunks[0];
  if (!caller || !out || number === '') {
    answer(d, inc, tx, 404, 'Not Found');
    return outcome('unavailable', 404);
  }
  // No ring timeout towards a trunk: the carrier plays its own no-answer treatment (voicemail,
  // announcements); Timer C still bounds the leg.
  return fork(d, inc, tx, [trunkTarget(rawUser, out)], 0, false, caller, outcome);
}

function answer(d: ProxyDeps, inc: IncomingRequest, tx: ServerTransaction, status: number, reason: string, headers?: readonly string[]): void {
  tx.respond(status, localResponse(inc, d.ids, status, reason, headers));
}

function fork(
  d: ProxyDeps,
  inc: IncomingRequest,
  tx: ServerTransaction,
  targets: BranchTarget[],
  ringTimeoutMs: number,
  declineEndsCall: boolean,
  caller: CallParty | undefined,
  outcome: (o: CallOutcomeName, s: number, branches: readonly BranchReport[]) => void,
): void {
  // Only INVITE creates a dialog, so only INVITE is record-routed and tracked as a call.
  const isInvite = inc.req.method === 'INVITE';
  const host = branchRequests(d, inc, forwardEdits(inc, 0, d.config().domain), isInvite);
  const f = new Fork(host, tx, inc.req.header('to') ?? '', targets, {
    ringTimeoutMs: isInvite ? ringTimeoutMs : 0,
    declineEndsCall,
    onAnswer: isInvite ? answered(d, inc, caller) : undefined,
    onDone: outcome,
  });
  f.start();
}

/**
 * What a 2xx announces: the dialog it confirms is a call of the caller's and the answering
 * device's extensions. Made apart from the request: the fork keeps this for 32 s after the call
 * is set up (a forking race may still bring a second 2xx), and a closure over the request
 * would keep the whole INVITE alive for as long.
 */
function answered(d: ProxyDeps, inc: IncomingRequest, caller: CallParty | undefined): ForkOptions['onAnswer'] {
  const events = d.events;
  const { callId, fromTag } = inc;
  const side = callerSide(inc);
  return (target, res) => {
    const parties: CallParty[] = [];
    if (caller) parties.push(caller);
    if (target.extension) parties.push({ extension: target.extension, device: target.device, direction: 'inbound' });
    if (parties.length === 0) return;
    const ends = side ? dialogEnds(side, res, target.dest, d.identity, (uri) => nextHop(uri, d.location)) : undefined;
    const sessionExpires = parseSessionExpires(res.header('session-expires'));
    events.dialogConfirmed({ callId, fromTag, toTag: tagOf(res.header('to')), parties, ends: ends ?? null, sessionExpires });
  };
}
