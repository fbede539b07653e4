/**
 * Helpers of the HTTP end-to-end tests (http-*.test.ts): the built proxy started with a config
 * of the test's own (https, trustProxy: the harness's startProxy writes its config itself and
 * polls /healthz over plain HTTP), its pid for SIGHUP, and HTTP requests from a chosen
 * loopback source address over node:http / node:https.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { stringify } from 'yaml';
import { ADMIN_TOKEN, CLI, DOMAIN, ROOT, type LogLine } from './harness.js';

export interface Running {
  pid: number;
  configFile: string;
  logs: LogLine[];
  output(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Writes a new config (same shape as `start` takes) and sends SIGHUP. */
  reload(config?: Record<string, unknown>): void;
  stop(): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * The config of these tests: one extension 200 with device anna-desk, UDP on sipPort, HTTP on
 * httpPort; `http` is merged into the http section, `extra` into the top level.
 */
export function baseConfig(o: { sipPort: number; httpPort: number; password: string; http?: object; extra?: object }): Record<string, unknown> {
  return {
    domain: DOMAIN,
    listen: [`udp://127.0.0.1:${o.sipPort}`],
    http: { listen: `127.0.0.1:${o.httpPort}`, adminToken: ADMIN_TOKEN, ...o.http },
    storage: { path: mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-http-storage-')) },
    extensions: [{ number: '200', name: 'Anna', devices: [{ username: 'anna-desk', password: o.password }] }],
    ...o.extra,
  };
}

/** How to run the proxy with a config file; default `node dist/src/cli.js --config FILE` in the repository. */
export type Launch = (configFile: string) => { command: string; args: string[]; cwd: string; env?: NodeJS.ProcessEnv };

const cliLaunch: Launch = (configFile) => ({ command: process.execPath, args: [CLI, '--config', configFile], cwd: ROOT });

/** Starts the proxy with `config`; resolves once it logged "sipbob started", rejects if it exits first. */
export async function start(config: Record<string, unknown>, opts: { readyTimeoutMs?: number; launch?: Launch } = {}): Promise<Running> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-http-'));
  const configFile = path.join(dir, 'sipbob.yaml');
  writeFileSync(configFile, stringify(config));
  const how = (opts.launch ?? cliLaunch)(configFile);
  const child = spawn(how.command, how.args, {
    cwd: how.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...(how.env ?? process.env), SIPBOB_ADMIN_TOKEN: '', SIPBOB_CONFIG: '' },
  });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => process.removeListener('exit', kill));

  const logs: LogLine[] = [];
  const raw: string[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    raw.push(chunk);
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        continue;
      }
      logs.push(entry);
      for (const w of waiters) if (w.pred(entry)) w.resolve(entry);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => raw.push(`[stderr] ${chunk}`));
  const output = () => raw.join('').slice(-8000);

  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 5000): Promise<LogLine> => {
    const past = logs.find(pred);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          waiters.delete(w);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`no matching log line within ${timeoutMs} ms; output:\n${output()}`));
      }, timeoutMs);
      waiters.add(w);
    });
  };

  const running: Running = {
    pid: child.pid!,
    configFile,
    logs,
    output,
    waitForLog,
    reload(next) {
      if (next !== undefined) writeFileSync(configFile, stringify(next));
      child.kill('SIGHUP');
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    },
    exited,
  };
  const started = await Promise.race([
    waitForLog((l) => l['msg'] === 'sipbob started', opts.readyTimeoutMs ?? 10_000).then(() => true),
    exited.then(() => false),
  ]).catch((e: Error) => e);
  if (started !== true) {
    await running.stop();
    throw new Error(`proxy did not start: ${started === false ? 'it exited' : started.message}\n${output()}`);
  }
  return running;
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** https only: the SHA-256 fingerprint of the certificate the server presented. */
  fingerprint256?: string;
  /** Whether the request went over a connection that an earlier request had opened. */
  reusedSocket: boolean;
}

export interface RequestOptions {
  port: number;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  /** Source address (a 127.x address) of the connection. */
  localAddress?: string;
  /** https with this CA; plain http without. */
  ca?: Buffer;
  /** A keep-alive agent to reuse connections; default a new connection per request. */
  agent?: http.Agent;
}

/** One request to 127.0.0.1; rejects on connection and TLS errors, 5 s timeout. */
export function request(o: RequestOptions): Promise<Res> {
  const lib = o.ca === undefined ? http : https;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      {
        host: '127.0.0.1',
        port: o.port,
        path: o.path,
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
        ...(o.ca === undefined ? {} : { ca: o.ca }),
        agent: o.agent ?? false,
        timeout: 5000,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const fingerprint256 = o.ca === undefined ? undefined : socket.getPeerCertificate().fingerprint256;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            reusedSocket: req.reusedSocket,
            ...(fingerprint256 === undefined ? {} : { fingerprint256 }),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}
