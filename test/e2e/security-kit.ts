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
 * A whole digest registration (REGISTER, 401, REGISTER with credentials) from peer; resolves
 * with the final status and how long each step took, or status 0 when an answer did not come.
 */
export async function registerOnce(
  peer: UdpPeer,
  sipPort: number,
  device: { username: string; password: string },
  timeoutMs = 2000,
): Promise<{ status: number; ms: number[] }> {
  const callId = `reg-${++seq}-${process.pid}@${peer.host}`;
  const ms: number[] = [];
  let t0 = performance.now();
  peer.send(request('REGISTER', { peer, user: device.username, callId, cseq: 1 }), sipPort);
  const challenge = await answer(peer, callId, timeoutMs, (m) => statusOf(m) === 401);
  ms.push(performance.now() - t0);
  if (!challenge) return { status: 0, ms };
  const auth = digestAuth(device, header(challenge, 'www-authenticate')[0]!, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
  t0 = performance.now();
  peer.send(request('REGISTER', { peer, user: device.username, callId, cseq: 2, authLine: `Authorization: ${auth}` }), sipPort);
  const final = await answer(peer, callId, timeoutMs, (m) => header(m, 'cseq')[0] === '2 REGISTER' && statusOf(m) >= 200);
  ms.push(performance.now() - t0);
  return { status: final ? statusOf(final) : 0, ms };
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
