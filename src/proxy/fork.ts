/**
 * A forked request: RFC 3261 §16's "response context". One server transaction upstream, one
 * client transaction per target (branch) downstream. Forwards provisional responses and every
 * 2xx, CANCELs the other branches once one answers, and otherwise picks the best final
 * response (§16.7) when all branches are done.
 */
import type { SipMessage } from '../sip/message.js';
import { NO_USER, type ClientTransaction, type ClientUser } from '../transaction/client.js';
import type { TransactionLayer } from '../transaction/layer.js';
import type { Cancellable, ServerTransaction } from '../transaction/server.js';
import type { Timer } from '../transaction/timer-queue.js';
import { CANCEL_GIVE_UP, TIMER_C } from '../transaction/timer-values.js';
import type { Endpoint } from '../transport/endpoint.js';
import { chooseBest, upstreamStatus } from './best-response.js';

export interface BranchTarget {
  uri: string;
  dest: Endpoint;
  /** Device username and its extension when the target is a registered device. */
  device: string;
  extension: string;
  /**
   * A Route header line (with CRLF) the branch's request, CANCEL and ACK carry on top: set when
   * the target is a binding another instance owns, which dest (its path) then names (§9.1,
   * §17.1.1.3: a CANCEL or ACK has the INVITE's Route). Absent on every other target.
   */
  route?: string;
}

/** How a call attempt ended, as the "call outcome" log line spells it. */
export const CALL_OUTCOMES = ['answered', 'busy-on-busy', 'no-answer', 'cancelled', 'declined', 'unavailable'] as const;
export type CallOutcomeName = (typeof CALL_OUTCOMES)[number];

export interface BranchReport {
  device: string;
  /** Final status when the outcome was decided; 0 when none had come yet. */
  status: number;
  /** This branch was CANCELled (another device answered, the caller hung up, ring timeout). */
  cancelled: boolean;
}

/** What a Fork needs from the proxy. */
export interface ForkHost {
  readonly layer: TransactionLayer;
  /** The request for one branch with our Via (branch id) on top. */
  buildBranchRequest(target: BranchTarget, branchId: string): Buffer;
  /**
   * CANCEL or ACK for a branch (§9.1, §17.1.1.3): same R-URI, the branch's Via (rebuilt from
   * the branch id, so no branch keeps its Via string), From/To/Call-ID, CSeq number.
   */
  buildBranchAux(method: 'CANCEL' | 'ACK', target: BranchTarget, branchId: string, to: string, extra: readonly string[]): Buffer;
  /** The response with our top Via removed, ready to go upstream. */
  upstream(res: SipMessage): Buffer;
  /** A fresh branch id (the transaction layer copies the key it keeps). */
  newBranchId(): string;
  /** Final answer generated here (480 on ring timeout, 487 after CANCEL...). */
  localResponse(status: number, reason: string): Buffer;
}

export interface ForkOptions {
  ringTimeoutMs: number; // 0: none (in-dialog requests)
  declineEndsCall: boolean;
  onAnswer?(target: BranchTarget, res: SipMessage): void;
  onDone?(outcome: CallOutcomeName, status: number, branches: BranchReport[]): void;
}

interface Branch {
  fork: Fork;
  target: BranchTarget;
  id: string;
  tx: ClientTransaction | undefined;
  provisional: boolean;
  final: number;
  finalRes: SipMessage | undefined;
  cancelSent: boolean;
  /**
   * Cancelled before any provisional response: the CANCEL waits for one (§9.1) while the
   * transaction goes on, but the fork no longer waits for this branch to decide the call.
   */
  abandoned: boolean;
  reason: readonly string[];
  timerC: Timer | undefined;
}

const COMPLETED_ELSEWHERE: readonly string[] = ['Reason: SIP;cause=200;text="Call completed elsewhere"'];
const NO_EXTRA: readonly string[] = [];

/**
 * The user of an answered branch's transaction once the fork has settled: in Accepted (Timer M,
 * 32 s) the transaction still passes 2xx retransmissions up (RFC 6026 §7.2), and they go on to
 * the caller. One small object in place of the fork, which can then be collected.
 */
class AcceptedRelay implements ClientUser {
  constructor(
    private readonly serverTx: ServerTransaction,
    private readonly upstream: (res: SipMessage) => Buffer,
  ) {}

  onResponse(res: SipMessage): void {
    if (res.status >= 200 && res.status < 300) this.serverTx.respond(res.status, this.upstream(res));
  }

  onFailure(): void {}
}

export class Fork implements Cancellable {
  private branches: Branch[] = [];
  /**
   * Builds branch requests, CANCELs and ACKs; it holds the request and the proxy's per-request
   * state. Dropped once the fork is settled (see settleIfDone()).
   */
  private host: ForkHost | undefined;
  private readonly layer: TransactionLayer;
  private readonly upstream: (res: SipMessage) => Buffer;
  private readonly method: string;
  private onDone: ForkOptions['onDone'];
  private readonly onAnswer: ForkOptions['onAnswer'];
  private readonly ringTimeoutMs: number;
  private readonly declineEndsCall: boolean;
  /** Final response sent upstream. */
  private done = false;
  private answered = false;
  private cancelledBy: 'caller' | 'timeout' | undefined;
  private ringTimer: Timer | undefined;
  private readonly isInvite: boolean;

  constructor(
    host: ForkHost,
    private readonly serverTx: ServerTransaction,
    private readonly toHeader: string,
    targets: readonly BranchTarget[],
    opts: ForkOptions,
  ) {
    // Options are copied, not kept: onDone (the call log, which closes over the request) is
    // dropped once it ran.
    this.ringTimeoutMs = opts.ringTimeoutMs;
    this.declineEndsCall = opts.declineEndsCall;
    this.onAnswer = opts.onAnswer;
    this.host = host;
    this.layer = host.layer;
    this.upstream = host.upstream;
    this.onDone = opts.onDone;
    this.method = serverTx.request?.method ?? '';
    this.isInvite = serverTx.isInvite;
    for (const target of targets) {
      this.branches.push({
        fork: this,
        target,
        id: host.newBranchId(),
        tx: undefined,
        provisional: false,
        final: 0,
        finalRes: undefined,
        cancelSent: false,
        abandoned: false,
        reason: NO_EXTRA,
        timerC: undefined,
      });
    }
  }

  start(): void {
    const host = this.host!;
    // A CANCEL for the INVITE finds the fork through its server transaction (§9.2) until the
    // fork settles.
    this.serverTx.cancellable = this;
    const timers = this.layer.timers;
    if (this.ringTimeoutMs > 0) {
      this.ringTimer = timers.schedule(this.ringTimeoutMs, Fork.ringTimeout, this);
    }
    const method = this.method;
    for (const b of this.branches) {
      const data = host.buildBranchRequest(b.target, b.id);
      b.tx = this.layer.sendRequest(
        b.id,
        method,
        b.target.dest,
        data,
        {
          onResponse: (res) => this.onBranchResponse(b, res),
          onFailure: (status) => this.onBranchFinal(b, status, undefined),
        },
        // Only for this branch's non-2xx final response, which comes before the fork settles.
        // Through this.host, not the local: these closures live as long as the transaction.
        this.isInvite ? (res) => this.host!.buildBranchAux('ACK', b.target, b.id, res.header('to') ?? this.toHeader, NO_EXTRA) : undefined,
      );
      if (this.isInvite) this.armTimerC(b);
    }
  }

  /** Timer C (§16.6 step 11): a branch that rings for ever is CANCELled, one that never answered counts as 408. */
  private armTimerC(b: Branch): void {
    const timers = this.layer.timers;
    b.timerC = timers.cancel(b.timerC);
    b.timerC = timers.schedule(TIMER_C, Fork.timerC, b);
  }

  // Timer callbacks take their object as argument: no closure per timer (timers.ts).
  private static timerC(b: Branch): void {
    if (b.final) return;
    if (b.provisional) b.fork.cancelBranch(b, NO_EXTRA);
    else {
      b.tx?.terminate();
      b.fork.onBranchFinal(b, 408, undefined);
    }
  }

  private static cancelUnanswered(b: Branch): void {
    if (b.final) return;
    b.tx?.terminate();
    b.fork.onBranchFinal(b, 487, undefined);
  }

  private static ringTimeout(fork: Fork): void {
    fork.cancelAll('timeout');
  }

  private onBranchResponse(b: Branch, res: SipMessage): void {
    const code = res.status;
    if (code < 200) {
      const first = !b.provisional;
      b.provisional = true; // a 100 too: §9.1 lets the CANCEL go after any provisional response
      if (code === 100) {
        // Hop-by-hop (§16.7 step 5): not relayed, and it does not reset Timer C.
        if (first && b.abandoned) this.cancelBranch(b, b.reason);
        return;
      }
      if (this.isInvite && !b.cancelSent) this.armTimerC(b);
      if (b.abandoned) {
        // The CANCEL waited for this provisional response (§9.1).
        this.cancelBranch(b, b.reason);
        return;
      }
      if (!this.done) this.serverTx.respond(code, this.upstream(res));
      return;
    }
    if (code < 300) {
      // Every 2xx goes upstream, also late ones from a forking race (§16.7 step 5, RFC 6026).
      const first = !this.answered;
      const firstOfBranch = !b.final;
      if (firstOfBranch) b.final = code;
      b.timerC = this.layer.timers.cancel(b.timerC);
      this.answered = true;
      this.serverTx.respond(code, this.upstream(res));
      // A retransmitted 2xx confirms nothing new; after a BYE it would bring the call back.
      if (firstOfBranch) this.onAnswer?.(b.target, res);
      if (first) {
        this.done = true;
        this.stopRingTimer();
        for (const o of this.branches) if (o !== b && !o.final) this.cancelBranch(o, COMPLETED_ELSEWHERE);
        this.finished('answered', code);
      }
      this.settleIfDone();
      return;
    }
    this.onBranchFinal(b, code, res);
  }

  private onBranchFinal(b: Branch, code: number, res: SipMessage | undefined): void {
    if (b.final) return;
    b.final = code;
    // Kept only while the best response is still to be chosen (§16.7 step 6).
    if (!this.done) b.finalRes = res;
    b.timerC = this.layer.timers.cancel(b.timerC);
    if (code >= 600 && this.declineEndsCall && !this.done && this.cancelledBy === undefined) {
      // declineEndsCall: one device's reject button ends the call for all (RFC 3261 §16.7 step 5 default).
      for (const o of this.branches) if (o !== b && !o.final) this.cancelBranch(o, NO_EXTRA);
    }
    this.maybeFinish();
    this.settleIfDone();
  }

  /**
   * Settled: the final response went upstream and every branch has its own. A CANCEL has
   * nothing left to stop, and the only event still to come is a 2xx retransmission on an
   * answered branch (its transaction stays Accepted for 32 s), which AcceptedRelay passes on.
   * Nothing refers to the fork after this: a finished call keeps its transactions for their
   * RFC timers, not its messages, branches or per-request state.
   */
  private settleIfDone(): void {
    if (!this.done || this.host === undefined) return;
    for (const b of this.branches) if (!b.final) return;
    this.host = undefined; // onDone already went when the final response did (finished())
    if (this.serverTx.cancellable === this) this.serverTx.cancellable = undefined;
    let relay: AcceptedRelay | undefined;
    for (const b of this.branches) {
      if (b.tx !== undefined && b.tx.state === 'accepted') b.tx.handOver((relay ??= new AcceptedRelay(this.serverTx, this.upstream)));
      b.tx = undefined;
      b.finalRes = undefined;
    }
  }

  private finished(outcome: CallOutcomeName, status: number): void {
    const onDone = this.onDone;
    this.onDone = undefined;
    onDone?.(outcome, status, this.report());
  }

  /** The caller's CANCEL (§9.2, §16.10). */
  cancel(): void {
    this.cancelAll('caller');
  }

  /** The caller's CANCEL or the ring timeout: cancel every branch still pending. */
  private cancelAll(why: 'caller' | 'timeout'): void {
    if (this.done || this.cancelledBy !== undefined) return;
    this.cancelledBy = why;
    this.stopRingTimer();
    for (const b of this.branches) if (!b.final) this.cancelBranch(b, NO_EXTRA);
    this.maybeFinish();
  }

  private cancelBranch(b: Branch, reason: readonly string[]): void {
    if (b.final || b.cancelSent) return;
    if (!b.provisional) {
      // §9.1: no CANCEL before a provisional response. The INVITE transaction goes on; the
      // CANCEL goes out when the 1xx arrives, and a final response is still ACKed by the
      // transaction. The caller is not kept waiting for this branch meanwhile.
      b.abandoned = true;
      b.reason = reason;
      return;
    }
    if (this.host === undefined) return; // settled: every branch is final
    b.cancelSent = true;
    const cancel = this.host.buildBranchAux('CANCEL', b.target, b.id, this.toHeader, reason);
    // Responses to our CANCEL need no handling (§9.1: the INVITE transaction carries on).
    this.layer.sendRequest(b.id, 'CANCEL', b.target.dest, cancel, NO_USER);
    // §9.1: a branch that gives no final response within 64*T1 of the CANCEL is given up, so a
    // device that vanished while ringing cannot keep the caller (and this fork) waiting.
    const timers = this.layer.timers;
    b.timerC = timers.cancel(b.timerC);
    b.timerC = timers.schedule(CANCEL_GIVE_UP, Fork.cancelUnanswered, b);
  }

  private maybeFinish(): void {
    if (this.done) return;
    if (this.branches.some((b) => !b.final && !b.abandoned)) return;
    this.done = true;
    this.stopRingTimer();
    const host = this.host!; // not settled: that needs done
    if (this.cancelledBy === 'caller') {
      this.serverTx.respond(487, host.localResponse(487, 'Request Terminated'));
      this.finished('cancelled', 487);
      return;
    }
    if (this.cancelledBy === 'timeout') {
      this.serverTx.respond(480, host.localResponse(480, 'Temporarily Unavailable (no answer)'));
      this.finished('no-answer', 480);
      return;
    }
    const i = chooseBest(this.branches.map((b) => b.final || 408));
    const best = this.branches[i]!;
    const status = upstreamStatus(best.final || 408);
    const data =
      best.finalRes && status === best.final
        ? this.upstream(best.finalRes)
        : host.localResponse(status, status === 408 ? 'Request Timeout' : status === 500 ? 'Server Error' : 'Failed');
    this.serverTx.respond(status, data);
    this.finished(outcomeOf(status), status);
  }

  private stopRingTimer(): void {
    this.ringTimer = this.layer.timers.cancel(this.ringTimer);
  }

  private report(): BranchReport[] {
    return this.branches.map((b) => ({ device: b.target.device, status: b.final, cancelled: b.cancelSent || b.abandoned }));
  }
}

/** DND and decline codes (phones differ: Yealink 480/486, Linphone 603) are "declined", never busy. */
function outcomeOf(status: number): CallOutcomeName {
  if (status === 486 || status === 480 || status === 600 || status === 603) return 'declined';
  if (status === 408) return 'no-answer';
  return 'unavailable';
}
