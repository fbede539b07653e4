/**
 * The embedded default store: an append-only journal plus an occasional snapshot, in one
 * directory, no server needed.
 *
 *   state.jsonl    one record per line: {"k":kind,"key":key,"v":value} or {"k":kind,"key":key,"d":1}
 *   snapshot.json  {"version":1,"state":[[kind,[[key,value],...]],...]}, written atomically
 *
 * Durability model: put/del only queue a line; one setImmediate per event-loop turn writes the
 * whole batch with a single write(2). Once written, data sits in the page cache, which survives
 * a kill -9 of the process (not a power cut: we fsync only snapshots and on close, because an
 * fsync per batch would cost milliseconds on every REGISTER). So anything the proxy answered
 * in an earlier turn is on disk when the process dies.
 *
 * The store keeps a reference to every live value so it can compact without asking callers
 * for anything. It holds the caller's objects, not a copy: values are immutable once put (a
 * change is a new object and a new put). A JSON copy per value cost about 400 bytes per
 * binding, 40 MB at 100,000 devices.
 */
import {
  closeSync,
  fstatSync,
  readSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Persistence } from './types.js';
import { jsonString } from '../lib/json-text.js';

export interface PersistenceLogger {
  warn(obj: object, msg: string): void;
}

export interface FilePersistenceOptions {
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

export interface FilePersistenceStats {
  /** write(2) calls that appended a batch to the journal. */
  writes: number;
  /** Records currently in the journal (since the last compaction). */
  journalRecords: number;
  compactions: number;
}

type Loaded = Map<string, Map<string, unknown>>;

const JOURNAL = 'state.jsonl';
const SNAPSHOT = 'snapshot.json';
const SNAPSHOT_TMP = 'snapshot.json.tmp';
const JOURNAL_NEXT = 'state.jsonl.next';

/** A snapshot being written: the state captured as references, and the journal it covers. */
interface Compaction {
  tmpFd: number;
  kinds: Array<[string, Array<[string, unknown]>]>;
  /** Next value to write: kinds[kind][1][item]. */
  kind: number;
  item: number;
  /** Journal length in bytes at the capture: the records the snapshot contains. */
  cut: number;
  recordsAtCut: number;
  timer: NodeJS.Immediate | undefined;
}
const SNAPSHOT_VERSION = 1;
/** After a failed write, how long until we try again (by compacting) without new changes. */
const RETRY_MS = 5000;

const defaultLogger: PersistenceLogger = {
  warn: (obj, msg) => process.emitWarning(`${msg} ${JSON.stringify(obj)}`, 'FilePersistenceWarning'),
};

export class FilePersistence implements Persistence {
  readonly stats: FilePersistenceStats = { writes: 0, journalRecords: 0, compactions: 0 };

  private readonly dir: string;
  private readonly compactAfter: number;
  private readonly chunkEntries: number;
  private readonly logger: PersistenceLogger;
  /** A compaction spread over event-loop turns, in progress (see compactIncrementally). */
  private compaction: Compaction | undefined;
  /** kind -> key -> value: what a snapshot would contain right now. */
  private state = new Map<string, Map<string, unknown>>();
  /** Journal lines not yet written. */
  private pending: string[] = [];
  private flushScheduled: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private fd: number | undefined;
  private loaded = false;
  private closed = false;
  /**
   * A journal write failed (disk full, I/O error): the journal may miss records or end in a
   * torn line. The memory copy is complete, so the next flush rewrites everything as a
   * snapshot instead of appending.
   */
  private broken = false;

  constructor(dir: string, opts: FilePersistenceOptions = {}) {
    this.dir = dir;
    this.compactAfter = opts.compactAfter ?? 10_000;
    this.chunkEntries = opts.chunkEntries ?? 5000;
    this.logger = opts.logger ?? defaultLogger;
  }

  /**
   * Reads snapshot.json, then replays state.jsonl over it. Damaged lines (a torn last line after
   * kill -9 mid-write) are skipped with a warning; a damaged snapshot is moved aside. Must be
   * called once, before any put/del: a compaction needs to know the state already on disk.
   */
  async load(): Promise<Loaded> {
    if (this.closed) throw new Error('FilePersistence: load() after close()');
    if (this.loaded) return this.copyState();
    mkdirSync(this.dir, { recursive: true });

    const state = new Map<string, Map<string, unknown>>();
    await this.readSnapshot(state);

    const journalPath = join(this.dir, JOURNAL);
    const journal = await readOptional(journalPath);
    // 'a': every write lands at the end even after ftruncate, without tracking an offset.
    this.fd = openSync(journalPath, 'a');
    if (journal !== undefined && journal.length > 0) this.replayJournal(journal, state);

    this.state = state;
    this.loaded = true;
    if (this.journalTooLong()) this.compactNow();
    return this.copyState();
  }

  put(kind: string, key: string, value: unknown, json?: string): void {
    if (!this.writable()) return;
    // The journal line is serialized now, not at flush time.
    const v = json ?? JSON.stringify(value) ?? 'null';
    let m = this.state.get(kind);
    if (m === undefined) this.state.set(kind, (m = new Map()));
    m.set(key, value);
    this.pending.push(`{"k":${jsonString(kind)},"key":${jsonString(key)},"v":${v}}`);
    this.scheduleFlush();
  }

  del(kind: string, key: string): void {
    if (!this.writable()) return;
    // The memory copy is complete after load(), so an unknown key has nothing to delete on
    // disk either: skip the record.
    if (this.state.get(kind)?.delete(key) !== true) return;
    this.pending.push(`{"k":${jsonString(kind)},"key":${jsonString(key)},"d":1}`);
    this.scheduleFlush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abortCompaction();
    if (this.flushScheduled !== undefined) clearImmediate(this.flushScheduled);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.flushScheduled = this.retryTimer = undefined;
    if (this.fd === undefined) return;
    this.flush();
    try {
      // A graceful stop should survive a power cut too; once per shutdown is cheap.
      fsyncSync(this.fd);
    } catch (err) {
      this.logger.warn({ err, dir: this.dir }, 'persistence: fsync on close failed');
    }
    closeSync(this.fd);
    this.fd = undefined;
  }

  private writable(): boolean {
    if (this.closed) {
      this.logger.warn({ dir: this.dir }, 'persistence: change after close() ignored');
      return false;
    }
    if (!this.loaded) throw new Error('FilePersistence: call load() before put()/del()');
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled !== undefined) return;
    this.flushScheduled = setImmediate(() => {
      this.flushScheduled = undefined;
      this.flush();
    });
  }

  /** Writes the pending batch with one write(2); never throws (it runs from setImmediate). */
  private flush(): void {
    if (this.broken) {
      // Everything pending is already in the memory copy, which the snapshot will contain.
      this.abortCompaction();
      if (this.compactNow()) {
        this.pending = [];
        this.broken = false;
      } else {
        this.scheduleRetry();
      }
      return;
    }
    if (this.pending.length === 0 || this.fd === undefined) return;
    const batch = this.pending;
    this.pending = [];
    try {
      writeFully(this.fd, Buffer.from(batch.join('\n') + '\n', 'utf8'));
      this.stats.writes++;
      this.stats.journalRecords += batch.length;
    } catch (err) {
      this.logger.warn({ err, dir: this.dir, records: batch.length }, 'persistence: journal write failed; will rewrite from memory');
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
   * live state (as Redis rewrites its AOF at 100% growth): with 100,000 bindings a fixed
   * threshold would rewrite the whole state every few thousand REGISTERs.
   */
  private journalTooLong(): boolean {
    const n = this.stats.journalRecords;
    if (n <= this.compactAfter) return false;
    return n > this.liveCount();
  }

  /**
   * Compaction: the state as of now is captured as references (values are immutable) with the
   * journal's length, written to snapshot.json.tmp, fsynced and renamed over snapshot.json;
   * then the journal is cut down to the records written after the capture. A crash at any
   * point leaves either the old snapshot with the whole journal, or the new snapshot with a
   * journal whose replay over it ends in the same state (each key's last record up to the
   * capture is its value in the snapshot).
   */
  private beginCompaction(): Compaction | undefined {
    if (this.fd === undefined) return undefined;
    const kinds: Array<[string, Array<[string, unknown]>]> = [];
    for (const [kind, m] of this.state) kinds.push([kind, [...m]]);
    const c: Compaction = {
      tmpFd: openSync(join(this.dir, SNAPSHOT_TMP), 'w'),
      kinds,
      kind: 0,
      item: 0,
      cut: fstatSync(this.fd).size,
      recordsAtCut: this.stats.journalRecords,
      timer: undefined,
    };
    writeFully(c.tmpFd, Buffer.from(`{"version":${SNAPSHOT_VERSION},"state":[`, 'utf8'));
    return c;
  }

  /**
   * Writes up to `budget` more values to the snapshot file; true when all are written. Written
   * in pieces of about 1 MB: one string of the whole state would cost its size twice over in
   * memory (string + buffer) at 100,000 bindings.
   */
  private writeSnapshot(c: Compaction, budget: number): boolean {
    let chunk = '';
    while (c.kind < c.kinds.length && budget > 0) {
      const [kind, items] = c.kinds[c.kind]!;
      if (c.item === 0) chunk += `${c.kind === 0 ? '' : ','}[${JSON.stringify(kind)},[`;
      while (c.item < items.length && budget > 0) {
        const [key, v] = items[c.item]!;
        chunk += `${c.item === 0 ? '' : ','}[${JSON.stringify(key)},${JSON.stringify(v) ?? 'null'}]`;
        c.item++;
        budget--;
        if (chunk.length > 1 << 20) {
          writeFully(c.tmpFd, Buffer.from(chunk, 'utf8'));
          chunk = '';
        }
      }
      if (c.item === items.length) {
        chunk += ']]';
        c.kind++;
        c.item = 0;
      }
    }
    writeFully(c.tmpFd, Buffer.from(chunk, 'utf8'));
    return c.kind === c.kinds.length;
  }

  /** Synchronous, so no journal write can slip in between the snapshot and the journal cut. */
  private finishCompaction(c: Compaction): void {
    writeFully(c.tmpFd, Buffer.from(']}\n', 'utf8'));
    fsyncSync(c.tmpFd);
    closeSync(c.tmpFd);
    c.tmpFd = -1;
    renameSync(join(this.dir, SNAPSHOT_TMP), join(this.dir, SNAPSHOT));
    fsyncDir(this.dir);
    // The journal's records after the capture become the whole journal.
    const journalPath = join(this.dir, JOURNAL);
    const tail = Buffer.allocUnsafe(fstatSync(this.fd!).size - c.cut);
    let off = 0;
    const readFd = openSync(journalPath, 'r'); // the append fd is write-only
    try {
      while (off < tail.length) {
        const n = readSync(readFd, tail, off, tail.length - off, c.cut + off);
        if (n === 0) break;
        off += n;
      }
    } finally {
      closeSync(readFd);
    }
    const nextPath = join(this.dir, JOURNAL_NEXT);
    const nextFd = openSync(nextPath, 'w');
    try {
      writeFully(nextFd, tail.subarray(0, off));
      fsyncSync(nextFd);
    } finally {
      closeSync(nextFd);
    }
    renameSync(nextPath, journalPath);
    // Open the new journal before letting go of the old one: this.fd is never left closed.
    const old = this.fd!;
    this.fd = openSync(journalPath, 'a');
    closeSync(old);
    this.stats.journalRecords -= c.recordsAtCut;
    this.stats.compactions++;
  }

  /** Drops an unfinished snapshot: the old snapshot and the whole journal stay as they are. */
  private discardCompaction(c: Compaction): void {
    if (c.timer !== undefined) clearImmediate(c.timer);
    try {
      if (c.tmpFd >= 0) closeSync(c.tmpFd);
      unlinkSync(join(this.dir, SNAPSHOT_TMP));
    } catch {
      // best effort: a stale tmp file is overwritten by the next compaction
    }
  }

  /** The whole compaction in this turn (small states, at load, after a failed write). */
  private compactNow(): boolean {
    let c: Compaction | undefined;
    try {
      c = this.beginCompaction();
      if (c === undefined) return false;
      this.writeSnapshot(c, Infinity);
      this.finishCompaction(c);
      return true;
    } catch (err) {
      this.logger.warn({ err, dir: this.dir }, 'persistence: compaction failed');
      if (c !== undefined) this.discardCompaction(c);
      return false;
    }
  }

  /**
   * A large state (150 to 260 ms to write at 100,000 bindings) is written chunkEntries values
   * per event-loop turn, while new changes keep going to the journal after the capture.
   */
  private compactIncrementally(): void {
    try {
      this.compaction = this.beginCompaction();
    } catch (err) {
      this.logger.warn({ err, dir: this.dir }, 'persistence: compaction failed');
      return;
    }
    const c = this.compaction;
    if (c !== undefined) c.timer = setImmediate(() => this.compactionStep(c));
  }

  private compactionStep(c: Compaction): void {
    c.timer = undefined;
    if (this.compaction !== c) return;
    try {
      if (!this.writeSnapshot(c, this.chunkEntries)) {
        c.timer = setImmediate(() => this.compactionStep(c));
        return;
      }
      this.finishCompaction(c);
      this.compaction = undefined;
    } catch (err) {
      this.logger.warn({ err, dir: this.dir }, 'persistence: compaction failed');
      this.abortCompaction();
    }
  }

  private abortCompaction(): void {
    const c = this.compaction;
    this.compaction = undefined;
    if (c !== undefined) this.discardCompaction(c);
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, RETRY_MS);
    this.retryTimer.unref(); // never keeps the process alive on its own
  }

  private async readSnapshot(state: Map<string, Map<string, unknown>>): Promise<void> {
    const path = join(this.dir, SNAPSHOT);
    const buf = await readOptional(path);
    if (buf === undefined) return;
    let entries: Array<[string, Array<[string, unknown]>]>;
    try {
      const doc: unknown = JSON.parse(buf.toString('utf8'));
      if (!isSnapshot(doc)) throw new Error(`not a version ${SNAPSHOT_VERSION} snapshot`);
      entries = doc.state;
    } catch (err) {
      // Cannot happen through our own writes (atomic rename); a hand edit or a newer version
      // could. Keep the file for a human instead of overwriting it at the next compaction.
      const aside = `${path}.bad-${Date.now()}`;
      this.logger.warn({ err, path, movedTo: aside }, 'persistence: unreadable snapshot moved aside');
      await rename(path, aside);
      return;
    }
    for (const [kind, items] of entries) {
      const m = new Map<string, unknown>();
      for (const [key, value] of items) m.set(key, value);
      state.set(kind, m);
    }
  }

  private replayJournal(buf: Buffer, state: Map<string, Map<string, unknown>>): void {
    const lastNl = buf.lastIndexOf(0x0a);
    const complete = buf.subarray(0, lastNl + 1).toString('utf8');
    const tail = buf.subarray(lastNl + 1);

    let bad = 0;
    let firstBad = 0;
    let records = 0;
    const lines = complete.split('\n');
    lines.pop(); // the empty string after the final '\n'
    for (let i = 0; i < lines.length; i++) {
      records++;
      if (!applyLine(lines[i]!, state)) {
        if (bad++ === 0) firstBad = i + 1;
      }
    }
    if (bad > 0) {
      this.logger.warn({ dir: this.dir, bad, firstBadLine: firstBad }, 'persistence: skipped damaged journal lines');
    }

    if (tail.length > 0) {
      // No trailing newline: the process died inside a write. A torn record is never valid
      // JSON (its closing brace comes last), so a record that parses is whole and is kept.
      if (applyLine(tail.toString('utf8'), state)) {
        records++;
        writeFully(this.fd!, Buffer.from('\n'));
      } else {
        // Cut it off, or the next batch would be glued onto it and its first record lost.
        this.logger.warn({ dir: this.dir, bytes: tail.length }, 'persistence: dropped torn last journal line');
        ftruncateSync(this.fd!, lastNl + 1);
      }
    }
    this.stats.journalRecords = records;
  }

  /**
   * Fresh maps over the same values: the caller adopts the restored objects as its live state
   * (one object per binding in memory, not two), under the same rule as put: never mutated.
   */
  private copyState(): Loaded {
    const out: Loaded = new Map();
    for (const [kind, entries] of this.state) out.set(kind, new Map(entries));
    return out;
  }
}

/** Applies one journal line; false when it is not a well-formed record. */
function applyLine(line: string, state: Map<string, Map<string, unknown>>): boolean {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return false;
  }
  if (typeof rec !== 'object' || rec === null) return false;
  const r = rec as { k?: unknown; key?: unknown; v?: unknown; d?: unknown };
  if (typeof r.k !== 'string' || typeof r.key !== 'string') return false;
  if (r.d === 1) {
    state.get(r.k)?.delete(r.key);
    return true;
  }
  if (!('v' in r)) return false;
  let m = state.get(r.k);
  if (m === undefined) state.set(r.k, (m = new Map()));
  m.set(r.key, r.v);
  return true;
}

function isSnapshot(doc: unknown): doc is { version: number; state: Array<[string, Array<[string, unknown]>]> } {
  if (typeof doc !== 'object' || doc === null) return false;
  const d = doc as { version?: unknown; state?: unknown };
  if (d.version !== SNAPSHOT_VERSION || !Array.isArray(d.state)) return false;
  return d.state.every(
    (kind: unknown) =>
      Array.isArray(kind) &&
      kind.length === 2 &&
      typeof kind[0] === 'string' &&
      Array.isArray(kind[1]) &&
      kind[1].every((item: unknown) => Array.isArray(item) && item.length === 2 && typeof item[0] === 'string'),
  );
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** write(2) may write less than asked (rare on files, but allowed): loop until done. */
function writeFully(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** Makes a rename durable. Not supported on every platform (Windows): best effort. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
