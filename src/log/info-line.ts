/**
 * The per-call info lines ("call outcome", "call ended") written in pino's format straight to
 * the logger's destination.
 *
 * Why not log.info(): pino serializes an object key by key (for...in, a serializer and a
 * stringifier lookup per key, its own escaping loop over every key and string value) and
 * concatenates the pieces: about 20,000 instructions per line under callgrind, for two lines
 * per call. These lines have a fixed shape: the caller writes their fields as JSON text
 * (lib/json-text.ts). Level filtering and the logger's bindings (name, child bindings) are
 * kept, so a line reads exactly as pino would have written it.
 */
import { pino, type Logger } from 'pino';

interface Destination {
  write(line: string): unknown;
}

export class InfoLine {
  private readonly level: number;

  constructor(private readonly log: Logger) {
    this.level = log.levels.values.info!;
  }

  /** The logger writes info lines: check before building the fields. */
  get enabled(): boolean {
    return this.log.isLevelEnabled('info');
  }

  /**
   * members: the line's fields as JSON object members without braces, the last one
   * "msg":"...". Written as one line at level info (nothing when the level is above info).
   */
  write(members: string): void {
    const log = this.log;
    if (!log.isLevelEnabled('info')) return;
    // pino keeps its destination and its bindings (",\"name\":\"sipbob\"...") under these
    // symbols, which it exports for integrations like this one.
    const state = log as unknown as Record<symbol, unknown>;
    const stream = state[pino.symbols.streamSym] as Destination;
    const chindings = state[pino.symbols.chindingsSym] as string;
    stream.write(`{"level":${this.level},"time":${Date.now()}${chindings},${members}}\n`);
  }
}
