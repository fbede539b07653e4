/**
 * Replaying state.jsonl over the state read from the snapshot. A line is
 * {"k":kind,"key":key,"v":value} (put) or {"k":kind,"key":key,"d":1} (delete).
 */

/** kind -> key -> value. */
export type RawState = Map<string, Map<string, unknown>>;

export interface ReplayResult {
  /** Well-formed and damaged records among the complete lines, plus a kept last line. */
  records: number;
  /** Complete lines that were not well-formed records, and the first one's number (1-based). */
  bad: number;
  firstBadLine: number;
  /**
   * The bytes after the last newline: none; a whole record that lost only its newline (kept:
   * append the newline); or a torn record (dropped: cut the journal back to `validLength`).
   */
  tail: 'none' | 'kept' | 'torn';
  tailBytes: number;
  validLength: number;
}

/** Applies every record of the journal to state; never throws on damaged content. */
export function replayJournal(buf: Buffer, state: RawState): ReplayResult {
  const lastNl = buf.lastIndexOf(0x0a);
  const complete = buf.subarray(0, lastNl + 1).toString('utf8');
  const tailBuf = buf.subarray(lastNl + 1);

  let bad = 0;
  let firstBadLine = 0;
  let records = 0;
  const lines = complete.split('\n');
  lines.pop(); // the empty string after the final '\n'
  for (let i = 0; i < lines.length; i++) {
    records++;
    if (!applyLine(lines[i]!, state)) {
      if (bad++ === 0) firstBadLine = i + 1;
    }
  }

  let tail: ReplayResult['tail'] = 'none';
  if (tailBuf.length > 0) {
    // No trailing newline: the process died inside a write. A torn record is never valid
    // JSON (its closing brace comes last), so a record that parses is whole and is kept.
    if (applyLine(tailBuf.toString('utf8'), state)) {
      records++;
      tail = 'kept';
    } else {
      tail = 'torn';
    }
  }
  return { records, bad, firstBadLine, tail, tailBytes: tailBuf.length, validLength: lastNl + 1 };
}

/** Applies one journal line; false when it is not a well-formed record. */
export function applyLine(line: string, state: RawState): boolean {
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
