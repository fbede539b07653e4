/**
 * pino's destination: log lines collected in an array and handed to the writer as one
 * buffer per batch (batchLength characters, or whatever the last interval logged).
 *
 * Not sonic-boom's own buffering (minLength): it re-measures its whole pending string on every
 * line, where here a line costs an array push and the join copies each byte once. The batch
 * goes out as bytes (sonic-boom with contentMode 'buffer'), because handed a string sonic-boom
 * encodes every batch twice.
 */
export interface LineWriter {
  write(data: Buffer): unknown;
  flushSync(): void;
}

export class LineBatcher {
  private lines: string[] = [];
  /** UTF-16 length of the pending lines: close enough to bytes for a batching threshold. */
  private size = 0;

  constructor(
    private readonly out: LineWriter,
    private readonly batchLength = 4096,
  ) {}

  /** pino calls this once per log line (a complete JSON line with its newline). */
  write(line: string): void {
    this.lines.push(line);
    this.size += line.length;
    if (this.size >= this.batchLength) this.flush();
  }

  /** Something is waiting to be written. */
  get pending(): boolean {
    return this.lines.length > 0;
  }

  /** Hand the pending lines to the writer (asynchronous for sonic-boom with sync: false). */
  flush(): void {
    const lines = this.lines;
    if (lines.length === 0) return;
    this.lines = [];
    this.size = 0;
    this.out.write(Buffer.from(lines.length === 1 ? lines[0]! : lines.join(''), 'utf8'));
  }

  /** Everything, now: for exit and fatal errors. */
  flushSync(): void {
    this.flush();
    this.out.flushSync();
  }
}
