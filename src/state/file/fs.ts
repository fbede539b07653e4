/** Small file helpers of the embedded store. */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface PersistenceLogger {
  warn(obj: object, msg: string): void;
}

/** write(2) may write less than asked (rare on files, but allowed): loop until done. */
export function writeFully(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * The same for text (UTF-8): node encodes the string straight into the write, without a Buffer
 * of ours on every batch; a short write goes on from the bytes.
 */
export function writeTextFully(fd: number, text: string): void {
  const n = writeSync(fd, text);
  const bytes = Buffer.byteLength(text);
  if (n < bytes) writeFully(fd, Buffer.from(text, 'utf8').subarray(n));
}

/** Makes a rename durable. Not supported on every platform (Windows): best effort. */
export function fsyncDir(dir: string): void {
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

/** The file's bytes, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
