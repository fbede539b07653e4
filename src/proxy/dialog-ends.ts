/**
 * How the proxy reaches each end of a dialog it confirmed, for requests of its own (keepalive
 * OPTIONS, a BYE that ends the call): the remote targets (the INVITE's and the 2xx's Contact),
 * the flows the call uses, the route set beyond this proxy (RFC 3261 §12.1), the tags. Read once
 * when the call is confirmed; the strings are copied so the call does not keep its messages.
 */
import type { DialogEnd } from '../calls/active-call.js';
import { ownString } from '../lib/own.js';
import { parseNameAddr } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import type { IncomingRequest } from '../transaction/request.js';
import type { Endpoint } from '../transport/endpoint.js';
import type { Identity } from './identity.js';

/** What the INVITE tells about the caller's end, kept by the fork until a 2xx comes. */
export interface CallerSide {
  contact: string;
  source: Endpoint;
  from: string;
  cseq: number;
}

export function callerSide(inc: IncomingRequest): CallerSide | undefined {
  const contact = parseNameAddr(inc.req.header('contact') ?? '')?.uri;
  const from = inc.req.header('from');
  if (!contact || from === undefined) return undefined;
  const s = inc.source;
  return { contact: ownString(contact), source: { transport: s.transport, address: ownString(s.address), port: s.port }, from: ownString(from), cseq: inc.cseq };
}

/**
 * Both ends from the INVITE's side and the confirming 2xx. calleeDest: where the branch went.
 * resolve: the next hop of a route URI. undefined when the 2xx has no usable Contact or To.
 */
export function dialogEnds(
  caller: CallerSide,
  res: SipMessage,
  calleeDest: Endpoint,
  identity: Identity,
  resolve: (uri: string) => Endpoint | undefined,
): { caller: DialogEnd; callee: DialogEnd } | undefined {
  const contact = parseNameAddr(res.header('contact') ?? '')?.uri;
  const to = res.header('to');
  if (!contact || to === undefined) return undefined;
  let towardsCallee: string[] = NONE;
  let towardsCaller: string[] = NONE;
  // One Record-Route entry is ours (we record-route every INVITE): nothing beyond us on
  // either side, which is the common case, read without splitting the header.
  if (res.hasSeveral('record-route')) {
    const rr = res.values('record-route');
    let first = -1;
    let last = -1;
    for (let i = 0; i < rr.length; i++) {
      if (identity.isOurUri(parseNameAddr(rr[i]!)?.uri)) {
        if (first === -1) first = i;
        last = i;
      }
    }
    // The 2xx lists the route set from the callee's side down: entries above ours lead to the
    // callee (nearest us last), entries below ours to the caller (nearest us first).
    if (first > 0) towardsCallee = rr.slice(0, first).reverse();
    if (last !== -1) towardsCaller = rr.slice(last + 1);
  }
  const ownTo = ownString(to);
  return {
    callee: {
      uri: ownString(contact),
      dest: firstHop(towardsCallee, calleeDest, resolve),
      from: caller.from,
      to: ownTo,
      routes: routeLines(towardsCallee),
      cseq: caller.cseq,
    },
    caller: {
      uri: caller.contact,
      dest: firstHop(towardsCaller, caller.source, resolve),
      from: ownTo,
      to: caller.from,
      routes: routeLines(towardsCaller),
      cseq: -1,
    },
  };
}

const NONE: string[] = [];

function firstHop(routes: string[], direct: Endpoint, resolve: (uri: string) => Endpoint | undefined): Endpoint {
  if (routes.length === 0) return direct;
  const uri = parseNameAddr(routes[0]!)?.uri;
  return (uri && resolve(uri)) || direct;
}

function routeLines(routes: string[]): string {
  let s = '';
  for (const r of routes) s += `Route: ${ownString(r)}\r\n`;
  return s;
}
