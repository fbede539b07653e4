/**
 * A forked request: RFC 3261 §16's "response context". One server transaction upstream, one
 * client transaction per target (branch) downstream. Forwards provisional responses and every
 * 2xx, CANCELs the other branches once one answers, and otherwise picks the best final
 * response (§16.7) when all branches are done.
 */
import type { Logger } from 'pino';
import type { SipMessage } from '../sip/message.js';
import { NO_USER, type ClientTransaction } from '../transaction/client.js';
import type { TransactionLayer } from '../transaction/layer.js';
import type { ServerTransaction } from '../transaction/server.js';
import { TIMER_C, type Timer } from '../transaction/timers.js';
import type { Endpoint } from '../transport/transports.js';
import { chooseBest, upstreamStatus } from './best-response.js';

export interface BranchTarget {
  uri: string;
  dest: Endpoint;
  /** Device username and its extension when the target is a registered device. */
  device: string;
  extension: string;
}

export type CallOutcomeName = 'answered' | 'busy-on-busy' | 'no-answer' | 'cancelled' | 'declined' | 'unavailable';

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
  readonly log: Logger;
  /** The request for one branch with our Via (branch id) on top. */
  buildBranchRequest(target: BranchTarget, branchId: string): { data: Buffer; via: string };
  /** CANCEL or ACK for a branch (§9.1, §17.1.1.3): same R-URI, our Via, From/To/Call-ID, CSeq number. */
  buildBranchAux(method: 'CANCEL' | 'ACK', target: BranchTarget, via: string, to: string, extra: string[]): Buffer;
  /** The response with our top Via removed, ready to go upstream. */
  upstream(res: SipMessage): Buffer;
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
  target: BranchTarget;
  id: string;
  via: string;
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
  reason: string[];
  timerC: Timer | undefined;
}

const COMPLETED_ELSEWHERE = 'Reason: SIP;cause=200;text="Call completed elsewhere"';

export class Fork {
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
        target,
        id: host.newBranchId(),
        via: '',
        tx: undefined,
        provisional: false,
        final: 0,
        finalRes: undefined,
        cancelSent: false,
        abandoned: false,
        reason: [],
        timerC: undefined,
      });
    }
  }

  start(): void {
    const host = this.host!;
    const timers = this.layer.timers;
    if (this.ringTimeoutMs > 0) {
      this.ringTimer = timers.schedule(this.ringTimeoutMs, () => this.cancelAll('timeout'));
    }
    const method = this.method;
    for (const b of this.branches) {
      const { data, via } = host.buildBranchRequest(b.target, b.id);
      b.via = via;
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
        this.isInvite ? (res) => this.host!.buildBranchAux('ACK', b.target, b.via, res.header('to') ?? this.toHeader, []) : undefined,
      );
      if (this.isInvite) this.armTimerC(b);
    }
  }

  /** Timer C (§16.6 step 11): a branch that rings for ever is CANCELled, one that never answered counts as 408. */
  private armTimerC(b: Branch): void {
    const timers = this.layer.timers;
    timers.cancel(b.timerC);
    b.timerC = timers.schedule(TIMER_C, () => {
      if (b.final) return;
      if (b.provisional) this.cancelBranch(b, []);
      else {
        b.tx?.terminate();
        this.onBranchFinal(b, 408, undefined);
      }
    });
  }

  private onBranchResponse(b: Branch, res: SipMessage): void {
    const code = res.status;
    if (code < 200) {
      if (code === 100) return; // hop-by-hop (§16.7 step 5)
      b.provisional = true;
      if (this.isInvite) this.armTimerC(b);
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
      if (!b.final) b.final = code;
      this.layer.timers.cancel(b.timerC);
      this.answered = true;
      this.serverTx.respond(code, this.upstream(res));
      this.onAnswer?.(b.target, res);
      if (first) {
        this.done = true;
        this.stopRingTimer();
        for (const o of this.branches) if (o !== b && !o.final) this.cancelBranch(o, [COMPLETED_ELSEWHERE]);
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
    this.layer.timers.cancel(b.timerC);
    if (code >= 600 && this.declineEndsCall && !this.done && this.cancelledBy === undefined) {
      // declineEndsCall: one device's reject button ends the call for all (RFC 3261 §16.7 step 5 default).
      for (const o of this.branches) if (o !== b && !o.final) this.cancelBranch(o, []);
    }
    this.maybeFinish();
    this.settleIfDone();
  }

  /**
   * Settled: the final response went upstream and every branch has its own. What is left to
   * do for the rest of the server transaction's life (32 s) is relaying a late 2xx of a forking
   * race, which needs neither the request nor the proxy's per-request state: let go of them,
   * so a finished call keeps a few hundred bytes alive instead of its messages.
   */
  private settleIfDone(): void {
    if (!this.done || this.host === undefined) return;
    for (const b of this.branches) if (!b.final) return;
    this.host = undefined; // onDone already went when the final response did (finished())
    for (const b of this.branches) {
      b.tx = undefined;
      b.finalRes = undefined;
    }
  }

  private finished(outcome: CallOutcomeName, status: number): void {
    const onDone = this.onDone;
    this.onDone = undefined;
    onDone?.(outcome, status, this.report());
  }

  /** The caller's CANCEL (§16.10) or the ring timeout: cancel every branch still pending. */
  cancelAll(why: 'caller' | 'timeout'): void {
    if (this.done || this.cancelledBy !== undefined) return;
    this.cancelledBy = why;
    this.stopRingTimer();
    for (const b of this.branches) if (!b.final) this.cancelBranch(b, []);
    this.maybeFinish();
  }

  private cancelBranch(b: Branch, reason: string[]): void {
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
    const cancel = this.host.buildBranchAux('CANCEL', b.target, b.via, this.toHeader, reason);
    // Responses to our CANCEL need no handling (§9.1: the INVITE transaction carries on).
    this.layer.sendRequest(b.id, 'CANCEL', b.target.dest, cancel, NO_USER);
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
    this.layer.timers.cancel(this.ringTimer);
    this.ringTimer = undefined;
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
