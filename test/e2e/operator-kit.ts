/**
 * Helpers shared by the operator end-to-end tests (operator-api, operator-portal,
 * operator-restart: the proxy with extensions 100 and 200, a held call, SIPp traces) and the
 * headless Chromium launch and page watch of both portal tests (operator-portal, portal).
 * Each test file keeps its own addresses, ports and passwords and passes them in.
 */
import dgram from 'node:dgram';
import type { Test } from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { callerOptions, sippStart, waitFor, type CallerOptions, type Proxy, type ProxyOptions, type SippProcess, type SippResult } from './harness.js';

// ---------------------------------------------------------------------------------------
// The proxy of the operator tests

/** The devices of the two extensions of the operator tests. */
export type OperatorUser = 'anna-desk' | 'anna-soft' | 'hotline-desk-1' | 'hotline-desk-2';

/**
 * The proxy options of the operator tests: 100 "Service Hotline" (shared use, busyOnBusy
 * false) with hotline-desk-1/-2, 200 "Anna Schmidt" (busyOnBusy true) with anna-desk and
 * anna-soft, one trusted trunk, ring timeout 8 s, calls up to an hour.
 */
export function operatorProxyOptions(o: { pw: Record<OperatorUser, string>; trunk: string; sipPort: number; httpPort: number }) {
  const extensions = [
    {
      number: '100',
      name: 'Service Hotline',
      busyOnBusy: false,
      devices: [
        { username: 'hotline-desk-1', password: o.pw['hotline-desk-1'] },
        { username: 'hotline-desk-2', password: o.pw['hotline-desk-2'] },
      ],
    },
    {
      number: '200',
      name: 'Anna Schmidt',
      busyOnBusy: true,
      devices: [
        { username: 'anna-desk', password: o.pw['anna-desk'] },
        { username: 'anna-soft', password: o.pw['anna-soft'] },
      ],
    },
  ];
  return {
    extensions,
    trunks: [{ name: 'carrier', address: o.trunk }],
    calls: { ringTimeout: 8, maxCallDuration: 3600 },
    sipPort: o.sipPort,
    httpPort: o.httpPort,
  } satisfies ProxyOptions;
}

/** Device options (for register, phone, idlePhone) of a user of `pw` at local:localPort. */
export function deviceOf<U extends string>(pw: Record<U, string>, remote: string) {
  return (username: U, local: string, localPort: number) => ({ username, password: pw[username], local, localPort, remote });
}

/**
 * The SIPp processes of a test: stopped at its teardown, then the proxy. `proxy` is read at
 * teardown, so a proxy started again meanwhile (restart tests) is the one stopped; `first`
 * (e.g. closing the browser) runs before both.
 */
export function stopAtEnd(t: Test, proxy: () => Proxy, first?: () => Promise<void> | undefined): SippProcess[] {
  const procs: SippProcess[] = [];
  t.teardown(async () => {
    await first?.();
    await Promise.all(procs.map((p) => p.stop()));
    await proxy().stop();
  });
  return procs;
}

/** Waits until `number` has `count` active calls: true, or the waitFor error message. */
export function activeCallsOn(
  ext: (n: string) => Promise<{ activeCalls: number }>,
  number: string,
  count: number,
  timeoutMs: number,
  intervalMs?: number,
): Promise<true | string> {
  return waitFor(`activeCalls ${count} on ${number}`, async () => ((await ext(number)).activeCalls === count ? true : undefined), timeoutMs, intervalMs).catch(
    (e: Error) => e.message,
  );
}

// ---------------------------------------------------------------------------------------
// SIPp

/** Distinct Call-IDs of the INVITEs a SIPp trace received (retransmissions counted once). */
export function invitedCalls(messages: string): string[] {
  const ids = new Set<string>();
  const re = /message received \[\d+\] bytes :\s*\r?\n\s*INVITE [\s\S]*?^Call-ID:\s*(\S+)/gim;
  for (const m of messages.matchAll(re)) ids.add(m[1]!);
  return [...ids];
}

/** The result of a SIPp that should be finishing: stopped (SIGTERM) if it is not done within `ms`. */
export async function doneWithin(proc: SippProcess, ms: number): Promise<SippResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const first = await Promise.race([proc.done, late]);
  clearTimeout(timer);
  return first === 'late' ? proc.stop() : first;
}

/**
 * Sends the "hang up now" INFO of op-caller-hold.xml from `from` straight to the held
 * caller's socket host:hostPort (fire and forget: the scenario does not answer it, see its
 * header).
 */
export async function triggerHangup(callId: string, host: string, hostPort: number, from: string): Promise<void> {
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, from, () => resolve());
    });
    const msg = [
      `INFO sip:held@${host}:${hostPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${from}:${sock.address().port};branch=z9hG4bK-op-trigger-${Date.now()};rport`,
      'Max-Forwards: 70',
      `From: <sip:test@${from}>;tag=op-trigger`,
      `To: <sip:held@${host}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INFO',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    await new Promise<void>((resolve, reject) => sock.send(msg, hostPort, host, (err) => (err ? reject(err) : resolve())));
  } finally {
    sock.close();
  }
}

export interface HeldCall {
  /** The SIPp caller (op-caller-hold.xml). */
  proc: SippProcess;
  /** Its -cid_str: `<callIdPrefix>-<pid>-<time>-%u@<local>`. */
  callId: string;
  /** Sends the trigger INFO (from the `trigger` address) to the caller: it then hangs up with a BYE. */
  hangup(): Promise<void>;
}

/**
 * Starts a call that stays up (op-caller-hold.xml) until `hangup()`. The Call-ID is our own
 * (-cid_str): the trigger INFO must carry it, and SIPp's message trace is written buffered,
 * so it cannot be read reliably while SIPp runs.
 */
export function holdCall(c: Omit<CallerOptions, 'scenario'> & { callIdPrefix: string; trigger: string }): HeldCall {
  const callId = `${c.callIdPrefix}-${process.pid}-${Date.now()}-%u@${c.local}`;
  const { callIdPrefix: _prefix, trigger, ...caller } = c;
  const proc = sippStart({
    ...callerOptions({ scenario: 'op-caller-hold.xml', ...caller }),
    extra: ['-cid_str', callId],
  });
  return { proc, callId, hangup: () => triggerHangup(callId.replace('%u', '1'), c.local, c.localPort, trigger) };
}

// ---------------------------------------------------------------------------------------
// The portal in headless Chromium (Debian's package; never a downloaded browser)

export const CHROMIUM = '/usr/bin/chromium';

/** Launches headless Chromium from CHROMIUM; `timeout` is playwright's launch timeout (ms). */
export function launchChromium(timeout?: number): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ...(timeout === undefined ? {} : { timeout }),
  });
}

/** Page errors and console errors (a CSP violation shows up there) fail the test. */
export function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|Unauthorized/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return problems;
}
