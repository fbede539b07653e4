import type { Binding } from '../../src/location/binding.js';

/**
 * A binding of `user` at contact port `port`, registered from udp:127.0.0.2:port and reached
 * there (dest is the source unless extra names another; an extra source is also the dest).
 */
export function binding(user: string, port: number, expiresAt = 1_700_000_600_000, extra: Partial<Binding> = {}): Binding {
  const source = extra.source ?? { transport: 'udp' as const, address: '127.0.0.2', port };
  return {
    username: user,
    extension: '200',
    contact: `sip:${user}@127.0.0.2:${port}`,
    expiresAt,
    callId: `cid-${user}`,
    cseq: 2,
    source,
    dest: source,
    userAgent: 'Yealink T46U äöü',
    ...extra,
  };
}
