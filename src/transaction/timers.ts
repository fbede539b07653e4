/**
 * RFC 3261 §17 timer values and one timer queue for all transactions.
 *
 * A busy proxy has tens of thousands of transactions, each with two or three timers; one
 * setTimeout per timer is a lot of libuv handles. Instead a binary heap of deadlines drives a
 * single setTimeout armed for the earliest one. Cancelled timers are dropped lazily when they
 * reach the top.
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

export class TimerQueue {
  private heap: Timer[] = [];
  private handle: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  /** Live (not yet fired nor cancelled) timers, for metrics and tests. */
  pending = 0;

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
      this.pending--;
    }
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
      if (t.cancelled) continue;
      t.cancelled = true;
      this.pending--;
      try {
        t.fn();
      } catch (err) {
        // A timer callback must never take the queue down with it.
        process.emitWarning(err instanceof Error ? err : new Error(String(err)));
      }
    }
    // Drop cancelled timers at the top so they do not arm a useless wake-up.
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    if (this.heap.length > 0) this.arm(this.heap[0]!.at);
  }

  clear(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = undefined;
    this.armedAt = Infinity;
    this.heap = [];
    this.pending = 0;
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
