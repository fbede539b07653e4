/**
 * Loop detection (RFC 3261 §16.3 step 4, §16.6 step 8): our branch ids carry a hash of the
 * fields that identify a request; a request that comes back with one of our Vias holding the
 * hash of this very request (same Request-URI, Call-ID, From tag, CSeq) looped. A spiral (new
 * Request-URI) has another hash and is let through.
 */
import { parseVia } from '../sip/headers.js';
import type { IncomingRequest } from '../transaction/request.js';

type LoopFields = Pick<IncomingRequest, 'req' | 'callId' | 'fromTag' | 'cseq'>;

/** FNV-1a over "uri\ncall-id\nfrom-tag\ncseq", read part by part (a concatenation would be flattened first). */
export function loopHash(inc: LoopFields): string {
  let h = fnv1a(0x811c9dc5, inc.req.uri);
  h = fnv1a(Math.imul(h ^ 10, 0x01000193), inc.callId);
  h = fnv1a(Math.imul(h ^ 10, 0x01000193), inc.fromTag);
  h = fnv1a(Math.imul(h ^ 10, 0x01000193), String(inc.cseq));
  return (h >>> 0).toString(36);
}

function fnv1a(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** branchPrefix: the prefix of every branch id this proxy makes (LocalIds). */
export function isLoop(inc: Pick<IncomingRequest, 'req' | 'callId' | 'fromTag' | 'cseq' | 'via'>, branchPrefix: string): boolean {
  // Only a request that already passed a proxy can have looped: most have one Via.
  if (!inc.req.hasSeveral('via', inc.via.alone)) return false;
  const viaValues = inc.req.values('via');
  const mark = branchPrefix + loopHash(inc) + '.';
  for (let i = 1; i < viaValues.length; i++) {
    const v = parseVia(viaValues[i]!);
    if (v && v.branch.startsWith(mark)) return true;
  }
  return false;
}
