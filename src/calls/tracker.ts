/**
 * Dialogs from 2xx to BYE (Kamailio's dialog module, reduced to what Busy on Busy needs):
 * which extensions are in a confirmed call. The tracker is the only writer of the per-extension
 * counters the Busy-on-Busy decision reads.
 */
import { activeCallJson } from '../lib/json-text.js';
import { ownString } from '../lib/own.js';
import type { ActiveCall, CallParty, Persistence } from '../state/types.js';

export interface CallEvents {
  ended(call: ActiveCall, why: 'bye' | 'expired'): void;
}

export class CallTracker {
  private calls = new Map<string, ActiveCall>();
  /** Call-ID → dialog ids, to find a dialog from an in-dialog request in either direction. */
  private byCallId = new Map<string, string[]>();
  private perExtension = new Map<string, number>();

  constructor(
    private readonly persistence: Persistence,
    private readonly now: () => number = Date.now,
    private readonly events?: CallEvents,
  ) {}

  static id(callId: string, fromTag: string, toTag: string): string {
    return `${callId};${fromTag};${toTag}`;
  }

  /** Calls from the store; those past their maxCallDuration are dropped. */
  restore(records: Map<string, unknown> | undefined): void {
    if (!records) return;
    const now = this.now();
    for (const [key, v] of records) {
      const c = v as ActiveCall;
      if (!c || typeof c.callId !== 'string' || !Array.isArray(c.parties) || c.expiresAt <= now) {
        this.persistence.del('call', key);
        continue;
      }
      this.insert(c);
    }
  }

  /** A 2xx confirmed a dialog. Retransmitted 2xx (same tags) are ignored. */
  confirmed(callId: string, fromTag: string, toTag: string, parties: CallParty[], maxDurationSec: number): ActiveCall | undefined {
    const id = CallTracker.id(callId, fromTag, toTag);
    if (this.calls.has(id)) return undefined;
    const startedAt = this.now();
    // A call lives for minutes or hours: its strings must not pin the INVITE's header text.
    const call: ActiveCall = {
      id: ownString(id),
      callId: ownString(callId),
      fromTag: ownString(fromTag),
      toTag: ownString(toTag),
      parties,
      startedAt,
      expiresAt: startedAt + maxDurationSec * 1000,
    };
    this.insert(call);
    this.persistence.put('call', call.id, call, activeCallJson(call)); // call.id: owned, the key lives as long as the call
    return call;
  }

  private insert(c: ActiveCall): void {
    this.calls.set(c.id, c);
    const ids = this.byCallId.get(c.callId);
    if (ids) ids.push(c.id);
    else this.byCallId.set(c.callId, [c.id]);
    for (const ext of extensionsOf(c)) this.perExtension.set(ext, (this.perExtension.get(ext) ?? 0) + 1);
  }

  /** The dialog an in-dialog request belongs to, whichever side sent it. */
  find(callId: string, fromTag: string, toTag: string): ActiveCall | undefined {
    return this.calls.get(CallTracker.id(callId, fromTag, toTag)) ?? this.calls.get(CallTracker.id(callId, toTag, fromTag));
  }

  /** BYE passed through (RFC 3261 §15): the dialog is over. */
  end(call: ActiveCall, why: 'bye' | 'expired'): void {
    if (!this.calls.delete(call.id)) return;
    const ids = this.byCallId.get(call.callId);
    if (ids) {
      const rest = ids.filter((i) => i !== call.id);
      if (rest.length) this.byCallId.set(call.callId, rest);
      else this.byCallId.delete(call.callId);
    }
    for (const ext of extensionsOf(call)) {
      const n = (this.perExtension.get(ext) ?? 1) - 1;
      if (n > 0) this.perExtension.set(ext, n);
      else this.perExtension.delete(ext);
    }
    this.persistence.del('call', call.id);
    this.events?.ended(call, why);
  }

  /** End calls that never saw their BYE (calls.maxCallDuration). Run periodically. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    // end() deletes the call from this.calls, which a Map's iterator allows: no copy.
    for (const c of this.calls.values()) {
      if (c.expiresAt <= now) {
        this.end(c, 'expired');
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

/** Each extension once, even when two of its devices are in the same dialog. */
function extensionsOf(c: ActiveCall): Set<string> {
  return new Set(c.parties.map((p) => p.extension));
}
