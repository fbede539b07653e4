/**
 * The embedded store: an append-only journal (journal.ts) plus an occasional snapshot
 * (snapshot.ts, compaction.ts), in one directory, no server needed. Typed by a codec per kind;
 * kinds found on disk without a codec are kept as they are.
 *
 * It keeps a reference to every live value so it can compact without asking anyone for
 * anything: the caller's objects, not copies (a copy per binding would double the memory of
 * the location service), which is why values are immutable once put.
 */
import { mkdirSync } from 'node:fs';
import { Compaction } from './compaction.js';
import type { PersistenceLogger } from './fs.js';
import { Journal } from './journal.js';
import { replayJournal, type RawState } from './replay.js';
import { readSnapshot } from './snapshot.js';
import { jsonString } from '../../lib/json-text.js';
import type { Codec, Codecs } from '../types.js';

export type { PersistenceLogger };

export interface FileStoreOptions {
  /** Compact once the journal holds more than this many records. Default 10,000. */
  compactAfter?: number;
  /**
   * A live state larger than this is written to the snapshot over several event-loop turns,
   * this many values per turn, so that serving SIP never stops for the whole rewrite.
   * Default 5,000.
   */
  chunkEntries?: number;
  logger?: PersistenceLogger;
}

export interface FileStoreStats {
  /** write(2) calls that appended a batch to the journal. */
  writes: number;
  /** Records currently in the journal (since the last compaction). */
  journalRecords: number;
  compactions: number;
}

export type LoadedKinds<T> = { [K in keyof T]: Map<string, T[K]> };

/** After a failed write, how long until we try again (by compacting) without new changes. */
const RETRY_MS = 5000;

/** Kinds on disk that no codec claims: kept and written back as they were read. */
const RAW: Codec<unknown> = { json: (v) => JSON.stringify(v) ?? 'null', decode: (v) => v };

const defaultLogger: PersistenceLogger = {
  warn: (obj, msg) => process.emitWarning(`${msg} ${JSON.stringify(obj)}`, 'FilePersistenceWarning'),
};

export class FileStore<T extends object> {
  private readonly dir: string;
  private readonly codecs: Codecs<T>;
  private readonly compactAfter: number;
  private readonly chunkEntries: number;
  private readonly logger: PersistenceLogger;
  private readonly journal: Journal;
  private compactions = 0;
  /** A compaction spread over event-loop turns, in progress. */
  private compaction: Compaction | undefined;
  /** kind -> key -> value: what a snapshot would contain right now. */
  private state: RawState = new Map();
  private retryTimer: NodeJS.Timeout | undefined;
  private loaded = false;
  private closed = false;
  /**
   * A journal write failed (disk full, I/O error): the journal may miss records or end in a
   * torn line. The memory copy is complete, so the next flush rewrites everything as a
   * snapshot instead of appending.
   */
  private broken = false;
  private readonly encode = (kind: string, v: unknown): string => this.codecOf(kind).json(v);

  constructor(dir: string, codecs: Codecs<T>, opts: FileStoreOptions = {}) {
    this.dir = dir;
    this.codecs = codecs;
    this.compactAfter = opts.compactAfter ?? 10_000;
    this.chunkEntries = opts.chunkEntries ?? 5000;
    this.logger = opts.logger ?? defaultLogger;
    this.journal = new Journal(dir, () => this.flush());
  }

  get stats(): FileStoreStats {
    return { writes: this.journal.writes, journalRecords: this.journal.records, compactions: this.compactions };
  }

  /**
   * Reads snapshot.json, then replays state.jsonl over it. Damaged lines (a torn last line after
   * kill -9 mid-write) are skipped with a warning; a damaged snapshot is moved aside; a record
   * its kind's codec does not accept is dropped (and deleted on disk). Must be called once,
   * before any put/del: a compaction needs to know the state already on disk.
   */
  async load(): Promise<LoadedKinds<T>> {
    if (this.closed) throw new Error('FilePersistence: load() after close()');
    if (this.loaded) return this.copyState();
    mkdirSync(this.dir, { recursive: true });

    const state: RawState = new Map();
    await readSnapshot(this.dir, state, this.logger);
    const buf = await this.journal.read();
    this.journal.open();
    if (buf !== undefined && buf.length > 0) {
      const r = replayJournal(buf, state);
      if (r.bad > 0) this.logger.warn({ dir: this.dir, bad: r.bad, firstBadLine: r.firstBadLine }, 'persistence: skipped damaged journal lines');
      if (r.tail === 'torn') this.logger.warn({ dir: this.dir, bytes: r.tailBytes }, 'persistence: dropped torn last journal line');
      this.journal.repairTail(r.tail, r.validLength);
      this.journal.records = r.records;
    }
    this.state = state;
    this.loaded = true;
    this.decodeLoaded();
    if (this.journalTooLong()) this.compactNow();
    return this.copyState();
  }

  /** Typed values in place of what JSON.parse gave; records no codec accepts are deleted. */
  private decodeLoaded(): void {
    for (const [kind, m] of this.state) {
      const codec = this.codecOf(kind);
      if (codec === RAW) continue;
      for (const [key, raw] of m) {
        const v = codec.decode(raw);
        if (v === undefined) this.del(kind as keyof T & string, key);
        else m.set(key, v);
      }
    }
  }

  put<K extends keyof T & string>(kind: K, key: string, value: T[K]): void {
    if (!this.writable()) return;
    // The journal line is serialized now, not at flush time.
    const v = this.codecOf(kind).json(value);
    let m = this.state.get(kind);
    if (m === undefined) this.state.set(kind, (m = new Map()));
    m.set(key, value);
    this.journal.queue(`{"k":${jsonString(kind)},"key":${jsonString(key)},"v":${v}}`);
  }

  del(kind: keyof T & string, key: string): void {
    if (!this.writable()) return;
    // The memory copy is complete after load(), so an unknown key has nothing to delete on
    // disk either: skip the record.
    if (this.state.get(kind)?.delete(key) !== true) return;
    this.journal.queue(`{"k":${jsonString(kind)},"key":${jsonString(key)},"d":1}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abortCompaction();
    this.journal.cancelTurn();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.journal.isOpen) return;
    this.flush();
    const err = this.journal.close();
    if (err !== undefined) this.logger.warn({ err, dir: this.dir }, 'persistence: fsync on close failed');
  }

  private codecOf(kind: string): Codec<unknown> {
    return ((this.codecs as Record<string, Codec<unknown> | undefined>)[kind] ?? RAW) as Codec<unknown>;
  }

  private writable(): boolean {
    if (this.closed) {
      this.logger.warn({ dir: this.dir }, 'persistence: change after close() ignored');
      return false;
    }
    if (!this.loaded) throw new Error('FilePersistence: call load() before put()/del()');
    return true;
  }

  /** Writes the queued batch with one write(2); never throws (it runs from setImmediate). */
  private flush(): void {
    if (this.broken) {
      // Everything queued is already in the memory copy, which the snapshot will contain.
      this.abortCompaction();
      if (this.compactNow()) {
        this.journal.dropPending();
        this.broken = false;
      } else {
        this.scheduleRetry();
      }
      return;
    }
    const records = this.journal.pendingCount;
    try {
      if (this.journal.writePending() === 0) return;
    } catch (err) {
      this.logger.warn({ err, dir: this.dir, records }, 'persistence: journal write failed; will rewrite from memory');
      this.broken = true;
      this.scheduleRetry();
      return;
    }
    if (this.compaction === undefined && this.journalTooLong()) {
      if (this.liveCount() > this.chunkEntries) this.compactIncrementally();
      else this.compactNow();
    }
  }

  private liveCount(): number {
    let live = 0;
    for (const m of this.state.values()) live += m.size;
    return live;
  }

  /**
   * Compact when the journal holds more than compactAfter records AND more records than the
   * live state (as Redis rewrites its AOF at 100% growth): with many bindings a fixed
   * threshold would rewrite the whole state every few thousand REGISTERs.
   */
  private journalTooLong(): boolean {
    const n = this.journal.records;
    if (n <= this.compactAfter) return false;
    return n > this.liveCount();
  }

  /** The whole compaction in this turn (small states, at load, after a failed write). */
  private compactNow(): boolean {
    if (!this.journal.isOpen) return false;
    let c: Compaction | undefined;
    try {
      c = new Compaction(this.dir, this.state, this.encode, this.journal);
      c.write(Infinity);
      c.finish();
      this.compactions++;
      return true;
    } catch (err) {
      this.logger.warn({ err, dir: this.dir }, 'persistence: compaction failed');
      c?.discard();
      return false;
    }
  }

  /** A large state is written chunkEntries values per turn (compaction.ts). */
  private compactIncrementally(): void {
    let c: Compaction;
    try {
      c = new Compaction(this.dir, this.state, this.encode, this.journal);
    } catch (err) {
      this.logger.warn({ err, dir: this.dir }, 'persistence: compaction failed');
      return;
    }
    this.compaction = c;
    c.runIncrementally(this.chunkEntries, this.logger, (ok) => {
      if (this.compaction !== c) return;
      this.compaction = undefined;
      if (ok) this.compactions++;
    });
  }

  private abortCompaction(): void {
    const c = this.compaction;
    this.compaction = undefined;
    c?.discard();
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, RETRY_MS);
    this.retryTimer.unref(); // never keeps the process alive on its own
  }

  /**
   * Fresh maps over the same values, one per kind with a codec: the caller adopts the restored
   * objects as its live state (one object per value in memory, not two), under the same rule as
   * put: never mutated.
   */
  private copyState(): LoadedKinds<T> {
    const out: Record<string, Map<string, unknown>> = {};
    for (const kind of Object.keys(this.codecs)) out[kind] = new Map(this.state.get(kind));
    return out as LoadedKinds<T>;
  }
}
