#!/usr/bin/env node
/**
 * sipbob command line (interface.md "Commands"):
 *   sipbob [--config FILE]          run the proxy (SIPBOB_CONFIG=FILE works too)
 *   sipbob check [--config FILE]    validate a config: exit 0, or print every error and exit 2;
 *                                   warns (exit 0) where phones could not reach what Via and
 *                                   Record-Route would name
 * Signals: SIGHUP reloads the config, SIGTERM/SIGINT stop gracefully.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { LineCounter, parseDocument } from 'yaml';
import { createLogger } from './log/logger.js';
import { App } from './app.js';
import { LineBatcher, type LineWriter } from './log/line-batcher.js';
import { formatErrors, loadConfig, type ConfigResult } from './config/load.js';
import { loadConfigIsolated } from './config/load-isolated.js';
import type { Config } from './config/types.js';
import { interfaceAddresses } from './transport/interfaces.js';
import { reachabilityWarnings } from './transport/reachability.js';

const DEFAULT_CONFIG = fileURLToPath(new URL('../../config/sipbob.yaml', import.meta.url));

function usage(): never {
  process.stderr.write('usage: sipbob [check] [--config FILE]\n');
  process.exit(64);
}

function parseArgs(argv: string[]): { command: 'run' | 'check'; config: string } {
  let command: 'run' | 'check' = 'run';
  let config = process.env.SIPBOB_CONFIG || DEFAULT_CONFIG;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'check' && i === 0) command = 'check';
    else if (a === '--config' || a === '-c') config = argv[++i] ?? usage();
    else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else usage();
  }
  return { command, config };
}

async function main(): Promise<void> {
  const { command, config: file } = parseArgs(process.argv.slice(2));
  // The running proxy parses in a worker so the YAML tree's memory is not kept (load-isolated.ts).
  const load = (): Promise<ConfigResult> => (command === 'check' ? Promise.resolve(loadConfig(file)) : loadConfigIsolated(file));
  const loaded = await load();
  if (loaded.errors.length > 0 || !loaded.config) {
    process.stderr.write(formatErrors(file, loaded.errors) + '\n');
    process.exit(2);
  }
  if (command === 'check') {
    const warnings = checkWarnings(file, loaded.config);
    if (warnings) process.stderr.write(warnings + '\n');
    process.stdout.write(`${file}: ok (${loaded.config.extensions.length} extensions)\n`);
    return;
  }
  // Buffered, asynchronous log writes: one write(2) per batch of up to 16 KB instead of one per
  // line. An asynchronous write is a round trip through libuv's thread pool, so batches go out
  // once a second (or when full) rather than every 200 ms (bench/README.md has the cost). A line
  // reaches the file within a second, and at once on stop and exit; a kill -9 can lose what
  // the last second logged (state is not in the log: it has its own journal). An idle proxy
  // writes nothing.
  // contentMode 'buffer': sonic-boom's write then takes the batch's bytes (line-batcher.ts says
  // why); its type declarations only describe the string form.
  const boom = pino.destination({ dest: 1, sync: false, contentMode: 'buffer' });
  const dest = new LineBatcher(boom as unknown as LineWriter, 16 * 1024);
  const flusher = setInterval(() => {
    if (dest.pending) dest.flush();
  }, 1000);
  flusher.unref();
  process.on('exit', () => {
    try {
      dest.flushSync();
    } catch {
      // stdout already gone
    }
  });
  const log = createLogger({ level: loaded.config.log.level, base: { name: 'sipbob' } }, dest);
  const app = new App(loaded.config, log);
  try {
    await app.start();
  } catch (err) {
    log.fatal({ err }, 'start failed');
    process.exit(1);
  }
  process.on('SIGHUP', () => {
    load().then(
      (next) => {
        if (next.errors.length > 0 || !next.config) {
          // A broken file must not take down a running PBX: keep the old config.
          log.error({ errors: next.errors }, 'config reload failed; keeping the running config');
          return;
        }
        app.reload(next.config);
      },
      (err: unknown) => log.error({ err }, 'config reload failed; keeping the running config'),
    );
  });
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Last line of defence: bad input is handled where it arrives; anything that still escapes
  // is logged and the process keeps serving (state lives in memory and must not be lost).
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}

/**
 * `file:line: key: warning: ...` for every listener phones could not reach as configured on
 * this host (transport/reachability.ts); "" when there is none.
 */
function checkWarnings(file: string, config: Config): string {
  const warnings = reachabilityWarnings(config, interfaceAddresses(os.networkInterfaces()));
  if (warnings.length === 0) return '';
  const lines = new LineCounter();
  let doc: ReturnType<typeof parseDocument> | undefined;
  try {
    doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter: lines });
  } catch {
    doc = undefined;
  }
  const lineOf = (key: string): number => {
    // "listen[0]" -> ['listen', 0]; a key the file does not have (a default) has no line.
    const path = key.split(/[[\].]/).filter(Boolean).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    const node = doc?.getIn(path, true) as { range?: [number, number, number] } | undefined;
    return node?.range ? lines.linePos(node.range[0]).line : 0;
  };
  return warnings
    .map((w) => {
      const line = lineOf(w.key);
      return `${file}${line > 0 ? `:${line}` : ''}: ${w.key}: warning: ${w.message}`;
    })
    .join('\n');
}

void main();
