/**
 * Helpers of the security e2e tests (issue 12): SIP requests as a scanner or a phone writes
 * them, a digest REGISTER over our own UDP socket, and /metrics read back.
 */
import { DOMAIN, type Proxy } from './harness.js';
import { digestAuth, header, sipMessage, UdpPeer } from './raw-sip.js';

export { UdpPeer };

let seq = 0;

export interface RequestOptions {
  /** The request's source (the Via sent-by). */
  peer: UdpPeer;
  /** User part of the Request-URI and To; the From user too unless `from` is given. */
  user: string;
  from?: string;
  callId?: string;
  cseq?: number;
  branch?: string;
  /** A whole Authorization / Proxy-Authorization line. */
  authLine?: string;
  userAgent?: string;
}

/** A REGISTER, INVITE or OPTIONS as a phone or a scanner sends it over UDP. */
export function request(method: 'REGISTER' | 'INVITE' | 'OPTIONS', o: RequestOptions): string {
  const n = ++seq;
  const uri = method === 'REGISTER' ? `sip:${DOMAIN}` : `sip:${o.user}@${DOMAIN}`;
  const from = o.from ?? o.user;
  const cseq = o.cseq ?? 1;
  return sipMessage([
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${o.peer.host}:${o.peer.port};rport;branch=${o.branch ?? `z9hG4bK-sec${n}-${Date.now()}`}`,
    'Max-Forwards: 70',
    `From: <sip:${from}@${DOMAIN}>;tag=sec${n}`,
    `To: <sip:${o.user}@${DOMAIN}>`,
    `Call-ID: ${o.callId ?? `sec-${n}-${process.pid}@${o.peer.host}`}`,
    `CSeq: ${cseq} ${method}`,
    `Contact: <sip:${from}@${o.peer.host}:${o.peer.port}>`,
    ...(method === 'REGISTER' ? ['Expires: 300'] : []),
    ...(o.authLine ? [o.authLine] : []),
    `User-Agent: ${o.userAgent ?? 'sipbob-e2e'}`,
  ]);
}

export const statusOf = (m: string): number => Number(/^SIP\/2\.0 (\d{3})/.exec(m)?.[1] ?? 0);
export const callIdOf = (m: string): string => header(m, 'call-id')[0] ?? '';

/** The first answer to callId (past or future) within timeoutMs, or undefined. */
export async function answer(peer: UdpPeer, callId: string, timeoutMs: number, pred: (m: string) => boolean = () => true): Promise<string | undefined> {
  try {
    return await peer.next((m) => callIdOf(m) === callId && pred(m), timeoutMs);
  } catch {
    return undefined;
  }
}

/**
 * Sends a non-INVITE request over UDP the way a phone's client transaction does (RFC 3261
 * 17.1.2.2): again after T1 = 500 ms, then doubling up to T2 = 4 s, until an answer matching
 * pred comes or timeoutMs pass. Over UDP a datagram may be lost (a flood fills the proxy's
 * socket buffer, and the kernel drops whatever arrives then); the retransmission is how SIP
 * recovers, so a test that measures what a phone experiences must send them too.
 */
export async function transact(
  peer: UdpPeer,
  sipPort: number,
  message: string,
  callId: string,
  timeoutMs: number,
  pred: (m: string) => boolean,
): Promise<{ reply: string | undefined; sends: number }> {
  let sends = 1;
  let interval = 500;
  let timer: NodeJS.Timeout | undefined;
  const again = () => {
    timer = setTimeout(() => {
      peer.send(message, sipPort);
      sends++;
      interval = Math.min(interval * 2, 4000);
      again();
    }, interval);
  };
  peer.send(message, sipPort);
  again();
  try {
    return { reply: await answer(peer, callId, timeoutMs, pred), sends };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A whole digest registration (REGISTER, 401, REGISTER with credentials) from peer, each
 * request retransmitted as a phone does (transact); resolves with the final status, how long
 * each step took from its first send, and how many datagrams were retransmitted, or status 0
 * when an answer did not come within timeoutMs.
 */
export async function registerOnce(
  peer: UdpPeer,
  sipPort: number,
  device: { username: string; password: string },
  timeoutMs = 2000,
): Promise<{ status: number; ms: number[]; retransmissions: number }> {
  const callId = `reg-${++seq}-${process.pid}@${peer.host}`;
  const ms: number[] = [];
  let t0 = performance.now();
  const first = await transact(peer, sipPort, request('REGISTER', { peer, user: device.username, callId, cseq: 1 }), callId, timeoutMs, (m) => statusOf(m) === 401);
  ms.push(performance.now() - t0);
  let retransmissions = first.sends - 1;
  if (!first.reply) return { status: 0, ms, retransmissions };
  const auth = digestAuth(device, header(first.reply, 'www-authenticate')[0]!, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
  t0 = performance.now();
  const withAuth = request('REGISTER', { peer, user: device.username, callId, cseq: 2, authLine: `Authorization: ${auth}` });
  const final = await transact(peer, sipPort, withAuth, callId, timeoutMs, (m) => header(m, 'cseq')[0] === '2 REGISTER' && statusOf(m) >= 200);
  ms.push(performance.now() - t0);
  retransmissions += final.sends - 1;
  return { status: final.reply ? statusOf(final.reply) : 0, ms, retransmissions };
}

/** A Prometheus sample of /metrics, e.g. metric(p, 'sipbob_dropped_messages_total{reason="flood"}'); 0 when absent. */
export async function metric(proxy: Proxy, sample: string): Promise<number> {
  const res = await proxy.api('/metrics');
  const text = await res.text();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

export interface BanRow {
  address: string;
  reason: string;
  until: string;
}

export const bans = (proxy: Proxy): Promise<BanRow[]> => proxy.apiJson<BanRow[]>('/api/bans');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
