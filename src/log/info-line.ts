/**
 * The per-call info lines ("call outcome", "call ended"), whose fields the caller has already
 * rendered as JSON text (lib/json-text.ts).
 *
 * pino's own log.info() serializes an object key by key, which is the dominant cost of these
 * two lines per call, so for a logger from createLogger they go straight to its sink, framed
 * with the level, time and bindings read through pino's public API (levels, bindings(),
 * isLevelEnabled). Any other logger (no known sink, so possibly formatters or redaction) gets
 * the fields through log.info(), which writes the same line.
 */
import type { Logger } from 'pino';
import { sinkOf, type LineSink } from './logger.js';

export class InfoLine {
  private readonly sink: LineSink | undefined;
  /** `{"level":30,"time":` */
  private readonly head: string;
  /** `,"name":"sipbob","room":"proxy",`: the bindings pino writes after the time. */
  private readonly bindings: string;

  constructor(private readonly log: Logger) {
    this.sink = sinkOf(log);
    this.head = `{"level":${log.levels.values['info']!},"time":`;
    const b = JSON.stringify(log.bindings());
    // Bindings are fixed once a child exists (nothing here calls setBindings).
    this.bindings = b === '{}' ? ',' : `,${b.slice(1, -1)},`;
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
    const sink = this.sink;
    if (sink !== undefined) sink.write(`${this.head}${Date.now()}${this.bindings}${members}}\n`);
    else log.info(JSON.parse(`{${members}}`) as object);
  }
}
