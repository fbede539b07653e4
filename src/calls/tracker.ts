/**
 * Dialogs from 2xx to BYE (Kamailio's dialog module, reduced to what Busy on Busy needs):
 * which extensions are in a confirmed call. The tracker is the only writer of the per-extension
 * counters the Busy-on-Busy decision reads. Memory only; changes are announced on `events`.
 */
import { Listeners } from '../lib/events.js';
import { ownString } from '../lib/own.js';
import type { ActiveCall, CallEvent, CallParty, ConfirmedDialog, EndReason } from './active-call.js';

export class CallTracker {
  /** Calls confirmed and ended, in the order they happen. */
  readonly events = new Listeners<CallEvent>();
  private calls = new Map<string, ActiveCall>();
  private perExtension = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  static id(callId: string, fromTag: string, toTag: string): string {
    return `${callId};${fromTag};${toTag}`;
  }

  /**
   * A call kept from before a restart. Announces nothing (it is not a change); false, and not
   * taken, when it passed its maxCallDuration while we were down or is known already.
   */
  restore(c: ActiveCall): boolean {
    if (c.expiresAt <= this.now() || this.calls.has(c.id)) return false;
    this.insert(c);
    return true;
  }

  /**
   * Another instance's call as shared state announced it: counted for Busy on Busy, without an
   * event (it is not a change made here and must not be written back). False when known already.
   */
  mirror(c: ActiveCall): boolean {
    if (this.calls.has(c.id)) return false;
    this.insert(c);
    return true;
  }

  /** Another instance's call ended (or the instance died): uncounted here without an event. */
  forget(id: string): void {
    const c = this.calls.get(id);
    if (c !== undefined) this.uncount(c);
  }

  /** A 2xx confirmed a dialog. Retransmitted 2xx (same tags) are ignored. */
  confirmed(d: ConfirmedDialog, maxDurationSec: number): ActiveCall | undefined {
    const { callId, fromTag, toTag } = d;
    const id = CallTracker.id(callId, fromTag, toTag);
    if (this.calls.has(id)) return undefined;
    const startedAt = this.now();
    // A call lives for minutes or hours: its strings must not pin the INVITE's header text.
    const call: ActiveCall = {
      id: ownString(id),
      callId: ownString(callId),
      fromTag: ownString(fromTag),
      toTag: ownString(toTag),
      parties: d.parties,
      startedAt,
      expiresAt: startedAt + maxDurationSec * 1000,
      ends: d.ends,
      sessionExpires: d.sessionExpires,
    };
    this.insert(call);
    this.events.emit({ type: 'confirmed', call });
    return call;
  }

  private insert(c: ActiveCall): void {
    this.calls.set(c.id, c);
    const parties = c.parties;
    for (let i = 0; i < parties.length; i++) {
      const ext = parties[i]!.extension;
      if (!seenBefore(parties, i)) this.perExtension.set(ext, (this.perExtension.get(ext) ?? 0) + 1);
    }
  }

  byId(id: string): ActiveCall | undefined {
    return this.calls.get(id);
  }

  /** The dialog an in-dialog request belongs to, whichever side sent it. */
  find(callId: string, fromTag: string, toTag: string): ActiveCall | undefined {
    return this.calls.get(CallTracker.id(callId, fromTag, toTag)) ?? this.calls.get(CallTracker.id(callId, toTag, fromTag));
  }

  /** BYE passed through (RFC 3261 §15), or the call ran out of time: the dialog is over. */
  end(call: ActiveCall, why: EndReason): void {
    if (this.uncount(call)) this.events.emit({ type: 'ended', call, why });
  }

  /** False when the call was not (or no longer) tracked. */
  private uncount(call: ActiveCall): boolean {
    if (!this.calls.delete(call.id)) return false;
    const parties = call.parties;
    for (let i = 0; i < parties.length; i++) {
      if (seenBefore(parties, i)) continue;
      const ext = parties[i]!.extension;
      const n = (this.perExtension.get(ext) ?? 1) - 1;
      if (n > 0) this.perExtension.set(ext, n);
      else this.perExtension.delete(ext);
    }
    return true;
  }

  /** End calls that never saw their BYE (calls.maxCallDuration). Run periodically. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    // end() deletes the call from this.calls, which a Map's iterator allows: no copy.
    for (const c of this.calls.values()) {
      if (c.expiresAt <= now) {
        // Another instance's call is ended, and announced, by its owner.
        if (c.owner !== undefined) this.uncount(c);
        else this.end(c, 'expired');
        n++;
      }
    }
    return n;
  }

  /** Confirmed calls in which a device of the extension takes part. */
  activeFor(extension: string): number {
    return this.perExtension.get(extension) ?? 0;
  }

  activeByExtension(): ReadonlyMap<string, number> {
    return this.perExtension;
  }

  all(): IterableIterator<ActiveCall> {
    return this.calls.values();
  }

  get size(): number {
    return this.calls.size;
  }
}

/**
 * Each extension counts once per call, even when two of its devices are in the same dialog:
 * a party whose extension an earlier party has is skipped (a call has one or two parties, so
 * this beats making a Set on every call).
 */
function seenBefore(parties: readonly CallParty[], i: number): boolean {
  const ext = parties[i]!.extension;
  for (let j = 0; j < i; j++) if (parties[j]!.extension === ext) return true;
  return false;
}
