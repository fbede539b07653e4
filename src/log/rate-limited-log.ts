/**
 * Bad input (and socket errors) are logged at a bounded rate: a flood must not turn into a flood of log
 * lines (and disk). At most `burst` lines per window; the rest are counted and reported once.
 */
import type { Logger } from 'pino';

export class RateLimitedLog {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(private readonly log: Logger, private readonly windowMs: number, private readonly burst: number, private readonly now = Date.now) {}

  warn(obj: object, msg: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'log lines suppressed (rate limit)');
      this.windowStart = t;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count < this.burst) {
      this.count++;
      this.log.warn(obj, msg);
    } else this.suppressed++;
  }
}
