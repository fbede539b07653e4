/**
 * RFC 3261 §17 timer values and one timer queue for all transactions.
 *
 * A busy proxy has tens of thousands of transactions, each with two or three timers; one
 * setTimeout per timer is a lot of libuv handles. Instead a binary heap of deadlines drives a
 * single setTimeout armed for the earliest one. Cancelled timers are dropped lazily when they
 * reach the top, but let go of their callback at once: a cancelled Timer C would otherwise keep
 * its whole fork (messages, transactions) alive for three minutes, and every such fork that
 * outlives two scavenges is promoted and costs a full GC later. When more than half of the
 * heap is cancelled entries it is rebuilt without them, so it stays proportional to the live
 * timers.
 */

/** Round-trip estimate (Timer A/E/G start value). */
export const T1 = 500;
/** Maximum retransmission interval for non-INVITE requests and INVITE responses. */
export const T2 = 4000;
/** Maximum time a message stays in the network. */
export const T4 = 5000;
/** Timers B, F, H, J, L, M. */
export const TIMEOUT_64T1 = 64 * T1;
/** Timer C (§16.6 step 11): an INVITE branch that gets no final response in this time is cancelled. */
export const TIMER_C = 180_000;

export interface Timer {
  at: number;
  fn: () => void;
  cancelled: boolean;
}

const NOOP = (): void => {};
/** Below this size a heap full of cancelled entries is not worth rebuilding. */
const REBUILD_MIN = 1024;

export class TimerQueue {
  private heap: Timer[] = [];
  /** Cancelled entries still in the heap. */
  private cancelledInHeap = 0;
  private handle: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  /** Live (not yet fired nor cancelled) timers, for metrics and tests. */
  pending = 0;

  /** Entries in the heap, cancelled ones included (tests). */
  get size(): number {
    return this.heap.length;
  }

  constructor(private readonly now: () => number = Date.now) {}

  schedule(delayMs: number, fn: () => void): Timer {
    const t: Timer = { at: this.now() + delayMs, fn, cancelled: false };
    this.push(t);
    this.pending++;
    if (t.at < this.armedAt) this.arm(t.at);
    return t;
  }

  cancel(t: Timer | undefined): void {
    if (t && !t.cancelled) {
      t.cancelled = true;
      t.fn = NOOP;
      this.pending--;
      if (++this.cancelledInHeap > this.heap.length >> 1 && this.heap.length >= REBUILD_MIN) this.rebuild();
    }
  }

  /** Drops every cancelled entry: O(n), run at most once per n/2 cancellations. */
  private rebuild(): void {
    const live = this.heap.filter((t) => !t.cancelled);
    live.sort((a, b) => a.at - b.at); // a sorted array is a valid heap
    this.heap = live;
    this.cancelledInHeap = 0;
  }

  private arm(at: number): void {
    if (this.handle) clearTimeout(this.handle);
    this.armedAt = at;
    this.handle = setTimeout(() => this.fire(), Math.max(0, at - this.now()));
    this.handle.unref();
  }

  private fire(): void {
    this.handle = undefined;
    this.armedAt = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const t = this.pop()!;
      if (t.cancelled) {
        this.cancelledInHeap--;
        continue;
      }
      t.cancelled = true;
      this.pending--;
      const fn = t.fn;
      t.fn = NOOP;
      try {
        fn();
      } catch (err) {
        // A timer callback must never take the queue down with it.
        process.emitWarning(err instanceof Error ? err : new Error(String(err)));
      }
    }
    // Drop cancelled timers at the top so they do not arm a useless wake-up.
    while (this.heap.length > 0 && this.heap[0]!.cancelled) {
      this.pop();
      this.cancelledInHeap--;
    }
    if (this.heap.length > 0) this.arm(this.heap[0]!.at);
  }

  clear(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = undefined;
    this.armedAt = Infinity;
    this.heap = [];
    this.pending = 0;
    this.cancelledInHeap = 0;
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= t.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = t;
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mAt = last.at;
        if (l < h.length && h[l]!.at < mAt) {
          m = l;
          mAt = h[l]!.at;
        }
        if (r < h.length && h[r]!.at < mAt) m = r;
        if (m === i) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}
