/**
 * Compaction: the state as of now is captured as references (values are immutable) together
 * with the journal's length, written to a new snapshot, and the journal is cut down to the
 * records written after the capture. A crash at any point leaves either the old snapshot with
 * the whole journal, or the new snapshot with a journal whose replay over it ends in the same
 * state (each key's last record up to the capture is its value in the snapshot).
 */
import type { PersistenceLogger } from './fs.js';
import type { Journal } from './journal.js';
import type { RawState } from './replay.js';
import { SnapshotWriter, type Encode } from './snapshot.js';

export class Compaction {
  private readonly snapshot: SnapshotWriter;
  /** Journal length in bytes at the capture, and its records: what the snapshot contains. */
  private readonly cut: number;
  private readonly recordsAtCut: number;
  private timer: NodeJS.Immediate | undefined;

  constructor(private readonly dir: string, state: RawState, encode: Encode, private readonly journal: Journal) {
    const kinds: Array<[string, Array<[string, unknown]>]> = [];
    for (const [kind, m] of state) kinds.push([kind, [...m]]);
    this.cut = journal.size();
    this.recordsAtCut = journal.records;
    this.snapshot = new SnapshotWriter(dir, kinds, encode);
  }

  /** Writes up to budget values; true when the snapshot holds them all. */
  write(budget: number): boolean {
    return this.snapshot.write(budget);
  }

  /** Puts the snapshot in place and cuts the journal; synchronous, so no batch slips in between. */
  finish(): void {
    this.snapshot.finish();
    this.journal.keepAfter(this.cut, this.recordsAtCut);
  }

  /** Drops the unfinished snapshot: the old snapshot and the whole journal stay as they are. */
  discard(): void {
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    this.snapshot.discard();
  }

  /**
   * Writes `chunk` values per event-loop turn while changes keep going to the journal, so that
   * serving SIP never stops for the whole rewrite of a large state. done(true) once in place,
   * done(false) after a failure (logged, and the compaction discarded).
   */
  runIncrementally(chunk: number, logger: PersistenceLogger, done: (ok: boolean) => void): void {
    const step = (): void => {
      this.timer = undefined;
      try {
        if (!this.write(chunk)) {
          this.timer = setImmediate(step);
          return;
        }
        this.finish();
      } catch (err) {
        logger.warn({ err, dir: this.dir }, 'persistence: compaction failed');
        this.discard();
        done(false);
        return;
      }
      done(true);
    };
    this.timer = setImmediate(step);
  }
}
