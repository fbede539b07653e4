/**
 * snapshot.json: {"version":1,"state":[[kind,[[key,value],...]],...]}, written to a tmp file,
 * fsynced and renamed over the old one, so a reader sees either snapshot whole.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, readOptional, writeFully, type PersistenceLogger } from './fs.js';
import type { RawState } from './replay.js';

export const SNAPSHOT = 'snapshot.json';
const SNAPSHOT_TMP = 'snapshot.json.tmp';
const SNAPSHOT_VERSION = 1;

/** JSON text of one value of a kind. */
export type Encode = (kind: string, value: unknown) => string;

/**
 * Fills state from dir/snapshot.json. A damaged snapshot is moved aside with a warning (state
 * stays empty): it cannot come from our own writes (atomic rename), but a hand edit or a newer
 * version could, and a human may want it back.
 */
export async function readSnapshot(dir: string, state: RawState, logger: PersistenceLogger): Promise<void> {
  const path = join(dir, SNAPSHOT);
  const buf = await readOptional(path);
  if (buf === undefined) return;
  let entries: Array<[string, Array<[string, unknown]>]>;
  try {
    const doc: unknown = JSON.parse(buf.toString('utf8'));
    if (!isSnapshot(doc)) throw new Error(`not a version ${SNAPSHOT_VERSION} snapshot`);
    entries = doc.state;
  } catch (err) {
    const aside = `${path}.bad-${Date.now()}`;
    logger.warn({ err, path, movedTo: aside }, 'persistence: unreadable snapshot moved aside');
    await rename(path, aside);
    return;
  }
  for (const [kind, items] of entries) {
    const m = new Map<string, unknown>();
    for (const [key, value] of items) m.set(key, value);
    state.set(kind, m);
  }
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

/**
 * A snapshot of a captured state, written into the tmp file a budget of values at a time, then
 * put in place by finish() or thrown away by discard().
 */
export class SnapshotWriter {
  private tmpFd: number;
  /** Next value to write: kinds[kind][1][item]. */
  private kind = 0;
  private item = 0;

  constructor(
    private readonly dir: string,
    private readonly kinds: Array<[string, Array<[string, unknown]>]>,
    private readonly encode: Encode,
  ) {
    this.tmpFd = openSync(join(dir, SNAPSHOT_TMP), 'w');
    writeFully(this.tmpFd, Buffer.from(`{"version":${SNAPSHOT_VERSION},"state":[`, 'utf8'));
  }

  /**
   * Writes up to `budget` more values; true when all are written. Written in pieces of about
   * 1 MB: one string of the whole state would cost its size twice over in memory (string and
   * buffer) with many bindings.
   */
  write(budget: number): boolean {
    let chunk = '';
    while (this.kind < this.kinds.length && budget > 0) {
      const [kind, items] = this.kinds[this.kind]!;
      if (this.item === 0) chunk += `${this.kind === 0 ? '' : ','}[${JSON.stringify(kind)},[`;
      while (this.item < items.length && budget > 0) {
        const [key, v] = items[this.item]!;
        chunk += `${this.item === 0 ? '' : ','}[${JSON.stringify(key)},${this.encode(kind, v)}]`;
        this.item++;
        budget--;
        if (chunk.length > 1 << 20) {
          writeFully(this.tmpFd, Buffer.from(chunk, 'utf8'));
          chunk = '';
        }
      }
      if (this.item === items.length) {
        chunk += ']]';
        this.kind++;
        this.item = 0;
      }
    }
    writeFully(this.tmpFd, Buffer.from(chunk, 'utf8'));
    return this.kind === this.kinds.length;
  }

  /** Closes the document, makes it durable and puts it in place of snapshot.json. */
  finish(): void {
    writeFully(this.tmpFd, Buffer.from(']}\n', 'utf8'));
    fsyncSync(this.tmpFd);
    closeSync(this.tmpFd);
    this.tmpFd = -1;
    renameSync(join(this.dir, SNAPSHOT_TMP), join(this.dir, SNAPSHOT));
    fsyncDir(this.dir);
  }

  /** Drops the unfinished file: the old snapshot stays as it is. */
  discard(): void {
    try {
      if (this.tmpFd >= 0) closeSync(this.tmpFd);
      this.tmpFd = -1;
      unlinkSync(join(this.dir, SNAPSHOT_TMP));
    } catch {
      // best effort: a stale tmp file is overwritten by the next compaction
    }
  }
}
