/**
 * The checks every request passes before it is routed (RFC 3261 §16.3). Pure: they say what
 * to answer, the caller answers. The loop check (§16.3 step 4) is loop-detection.ts.
 */
import type { SipUri } from '../sip/uri.js';
import type { IncomingRequest } from '../transaction/request.js';
import type { LocalAnswer } from './local-response.js';

const TOO_MANY_HOPS: LocalAnswer = { status: 483, reason: 'Too Many Hops' };
const UNSUPPORTED_SCHEME: LocalAnswer = { status: 416, reason: 'Unsupported URI Scheme' };

/** ruri: the Request-URI as the caller parsed it (undefined when it did not parse). */
export function checkRequest(inc: IncomingRequest, ruri: SipUri | undefined): LocalAnswer | undefined {
  if (inc.maxForwards === 0) return TOO_MANY_HOPS;
  const proxyRequire = inc.req.header('proxy-require');
  if (proxyRequire !== undefined) return { status: 420, reason: 'Bad Extension', headers: [`Unsupported: ${proxyRequire}`] };
  if (!ruri || (ruri.scheme !== 'sip' && ruri.scheme !== 'sips' && ruri.scheme !== 'tel')) return UNSUPPORTED_SCHEME;
  return undefined;
}
