/**
 * One timer queue for all transactions (the RFC's values are in timer-values.ts).
 *
 * A busy proxy holds tens of thousands of timers (every finished call leaves Timers D, J, L
 * and M running for 32 s), so one timer must cost little: a callback takes its object as
 * argument (no closure per timer), deadlines are small integers from the queue's epoch (no
 * boxed double), and a cancelled timer leaves the heap at once (it keeps nothing alive).
 *
 * Due timers are looked for on a tick while the heap is not empty, as Kamailio's timer does
 * (1/16 s), instead of re-arming a setTimeout for each new earliest deadline, which makes node
 * create and delete a timer list per distinct delay (bench/README.md has the measurement). A
 * timer fires at most one tick late, which SIP's timers (T1 = 500 ms) do not notice; an empty
 * queue stops ticking.
 */

export interface Timer {
  /** Deadline, ms since the queue's epoch. */
  at: number;
  /** Position in the heap; -1 once fired or cancelled. */
  index: number;
  fn: ((arg: never) => void) | undefined;
  arg: unknown;
}

/** How often due timers are looked for, in ms. */
export const TICK = 50;

/** Deadlines are rebased before they leave the small-integer range (2^30 ms, 12 days). */
const REBASE_AFTER = 2 ** 29;
const MAX_DELAY = 2 ** 28;

export class TimerQueue {
  private heap: Timer[] = [];
  /** The tick, running while the heap is not empty. */
  private handle: NodeJS.Timeout | undefined;
  private epoch: number;
  private readonly onTimeout = (): void => this.fire();

  /** Live timers (not yet fired nor cancelled): the heap holds no others. For tests. */
  get pending(): number {
    return this.heap.length;
  }

  constructor(private readonly now: () => number = Date.now) {
    this.epoch = now();
  }

  /** Run fn(arg) after delayMs. A module-level fn and the object as arg allocate no closure. */
  schedule<A>(delayMs: number, fn: (arg: A) => void, arg: A): Timer;
  schedule(delayMs: number, fn: () => void): Timer;
  schedule<A>(delayMs: number, fn: (arg: A) => void, arg?: A): Timer {
    // | 0: integer arithmetic, so V8 stores a small integer, never a boxed double (see clock()).
    const t: Timer = { at: (this.clock() + Math.min(Math.max(0, delayMs), MAX_DELAY)) | 0, index: -1, fn: fn as (arg: never) => void, arg };
    this.push(t);
    if (this.handle === undefined) {
      this.handle = setInterval(this.onTimeout, TICK);
      this.handle.unref();
    }
    return t;
  }

  /** Returns undefined, for `this.timer = timers.cancel(this.timer)`: nobody keeps a dead timer. */
  cancel(t: Timer | undefined): undefined {
    if (t === undefined || t.index < 0) return undefined;
    this.remove(t.index);
    t.fn = undefined;
    t.arg = undefined;
    return undefined;
  }

  /**
   * Milliseconds since the epoch, rebasing every deadline when they grow too large. An int32
   * on purpose: the difference of two Date.now() values is a boxed double in V8 even when
   * whole, and one such value stored in Timer.at would turn the field into a box per timer.
   */
  private clock(): number {
    const now = this.now();
    let rel = (now - this.epoch) | 0;
    if (rel > REBASE_AFTER) {
      for (const t of this.heap) t.at -= rel;
      this.epoch = now;
      rel = 0;
    }
    return rel;
  }

  private fire(): void {
    const now = this.clock();
    const h = this.heap;
    while (h.length > 0 && h[0]!.at <= now) {
      const t = h[0]!;
      this.remove(0);
      const fn = t.fn as ((arg: unknown) => void) | undefined;
      const arg = t.arg;
      t.fn = undefined;
      t.arg = undefined;
      try {
        fn?.(arg);
      } catch (err) {
        // A timer callback must never take the queue down with it.
        process.emitWarning(err instanceof Error ? err : new Error(String(err)));
      }
    }
    // Nothing left (also after cancels): stop ticking until the next schedule().
    if (this.heap.length === 0) this.stop();
  }

  private stop(): void {
    if (this.handle !== undefined) clearInterval(this.handle);
    this.handle = undefined;
  }

  clear(): void {
    this.stop();
    for (const t of this.heap) t.index = -1;
    this.heap = [];
  }

  private push(t: Timer): void {
    this.heap.push(t);
    this.siftUp(t, this.heap.length - 1);
  }

  /** Take the entry at index i out of the heap: the last entry fills the hole. */
  private remove(i: number): void {
    const h = this.heap;
    const gone = h[i]!;
    gone.index = -1;
    const last = h.pop()!;
    if (last === gone) return;
    if (i > 0 && last.at < h[(i - 1) >> 1]!.at) this.siftUp(last, i);
    else this.siftDown(last, i);
  }

  private siftUp(t: Timer, i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.at <= t.at) break;
      h[i] = parent;
      parent.index = i;
      i = p;
    }
    h[i] = t;
    t.index = i;
  }

  private siftDown(t: Timer, i: number): void {
    const h = this.heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && h[r]!.at < h[l]!.at ? r : l;
      const child = h[m]!;
      if (child.at >= t.at) break;
      h[i] = child;
      child.index = i;
      i = m;
    }
    h[i] = t;
    t.index = i;
  }
}
