/**
 * state.jsonl, the append-only journal: one record per line. Lines are queued and written as
 * one batch with a single write(2) per event-loop turn. Once written, data sits in the page
 * cache, which survives a kill -9 of the process (not a power cut: only snapshots and close()
 * fsync, because an fsync per batch would cost milliseconds on every REGISTER).
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { readOptional, writeFully, writeTextFully } from './fs.js';

const JOURNAL = 'state.jsonl';
const JOURNAL_NEXT = 'state.jsonl.next';

export class Journal {
  /** write(2) calls that appended a batch. */
  writes = 0;
  /** Records in the file (since the last cut). */
  records = 0;
  private readonly path: string;
  private fd: number | undefined;
  private pending: string[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  /** onTurn runs once in the turn after lines were queued: it decides how to write them (flush). */
  constructor(private readonly dir: string, private readonly onTurn: () => void) {
    this.path = join(dir, JOURNAL);
  }

  /** The journal as it is on disk, before open(). */
  read(): Promise<Buffer | undefined> {
    return readOptional(this.path);
  }

  open(): void {
    // 'a': every write lands at the end even after ftruncate, without tracking an offset.
    this.fd = openSync(this.path, 'a');
  }

  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  /** After a replay: end the last whole record with its newline, or cut a torn one off (else the next batch would be glued onto it). */
  repairTail(tail: 'none' | 'kept' | 'torn', validLength: number): void {
    if (tail === 'kept') writeFully(this.fd!, Buffer.from('\n'));
    else if (tail === 'torn') ftruncateSync(this.fd!, validLength);
  }

  queue(line: string): void {
    this.pending.push(line);
    if (this.scheduled !== undefined) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.onTurn();
    });
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Forget the queued lines: a snapshot of the memory copy holds them already. */
  dropPending(): void {
    this.pending = [];
  }

  /**
   * Writes the queued lines with one write(2). Throws when the write fails; the lines are gone
   * from the queue then, and the file may end in a torn line: the caller rewrites from memory.
   */
  writePending(): number {
    if (this.pending.length === 0 || this.fd === undefined) return 0;
    const batch = this.pending;
    this.pending = [];
    writeTextFully(this.fd, batch.join('\n') + '\n');
    this.writes++;
    this.records += batch.length;
    return batch.length;
  }

  /** Bytes in the file now. */
  size(): number {
    return fstatSync(this.fd!).size;
  }

  /**
   * Cuts the journal down to the bytes after `cut` (the records a new snapshot does not hold):
   * they are written to state.jsonl.next, fsynced and renamed over the journal. Synchronous, so
   * no batch can slip in between.
   */
  keepAfter(cut: number, recordsBeforeCut: number): void {
    const tail = Buffer.allocUnsafe(this.size() - cut);
    let off = 0;
    const readFd = openSync(this.path, 'r'); // the append fd is write-only
    try {
      while (off < tail.length) {
        const n = readSync(readFd, tail, off, tail.length - off, cut + off);
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
    renameSync(nextPath, this.path);
    // Open the new journal before letting go of the old one: the fd is never left closed.
    const old = this.fd!;
    this.fd = openSync(this.path, 'a');
    closeSync(old);
    this.records -= recordsBeforeCut;
  }

  /** Stops the pending turn (close() writes what is queued itself). */
  cancelTurn(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
  }

  /** fsync and close; a graceful stop should survive a power cut too. fsync errors are returned, not thrown. */
  close(): unknown {
    if (this.fd === undefined) return undefined;
    let error: unknown;
    try {
      fsyncSync(this.fd);
    } catch (err) {
      error = err;
    }
    closeSync(this.fd);
    this.fd = undefined;
    return error;
  }
}
