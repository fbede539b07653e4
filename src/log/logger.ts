/**
 * The process logger: pino writing whole JSON lines to a sink (the LineBatcher in production).
 * The logger remembers its sink, and so does every child, so that InfoLine can write its
 * pre-rendered lines to the same place in the same order (info-line.ts says why).
 */
import { pino, type Logger } from 'pino';

/** Where log lines go: one complete JSON line with its newline per call. */
export interface LineSink {
  write(line: string): unknown;
}

/**
 * Deliberately narrow: no formatters, serializers, redaction, mixin, custom time or message
 * key, so that a line InfoLine renders itself is byte for byte the line pino would write.
 */
export interface LoggerOptions {
  level: string;
  base: { name: string };
}

const sinks = new WeakMap<Logger, LineSink>();

export function createLogger(options: LoggerOptions, sink: LineSink): Logger {
  const log = pino(
    {
      level: options.level,
      base: { name: options.base.name },
      // Children inherit onChild, so grandchildren are registered too.
      onChild: (child) => void sinks.set(child as Logger, sink),
    },
    sink,
  );
  sinks.set(log, sink);
  return log;
}

/** The sink of a logger made by createLogger (or a child of one); undefined for any other. */
export function sinkOf(log: Logger): LineSink | undefined {
  return sinks.get(log);
}
