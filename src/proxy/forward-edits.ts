/**
 * The header edits a proxy makes to every request it forwards (RFC 3261 §16.6): Max-Forwards
 * decremented, our received/rport in the top Via, our own Route entries popped (§16.4), our
 * realm's credentials consumed (§22.3). Computed once per request and shared by its branches.
 */
import { countValues, type HeaderField, type SipMessage } from '../sip/message.js';
import { withFirstValue, withoutFirstValues } from '../sip/serialize.js';
import type { IncomingRequest } from '../transaction/request.js';

/** Header line -> its new text, or null to drop it. */
export type Edits = Map<HeaderField, string | null>;

export interface ForwardEdits {
  edits: Edits;
  /** The Max-Forwards line to add when the request had none, else undefined. */
  addMaxForwards: string | undefined;
}

export function forwardEdits(inc: IncomingRequest, popRoutes: number, realm: string): ForwardEdits {
  const req = inc.req;
  const edits: Edits = new Map();
  let mfSeen = false;
  let firstVia = true;
  let toPop = popRoutes;
  for (const h of req.headers) {
    switch (h.name) {
      case 'max-forwards':
        mfSeen = true;
        edits.set(h, `Max-Forwards: ${inc.maxForwards - 1}`);
        break;
      case 'via':
        if (firstVia && inc.stampedVia !== undefined) edits.set(h, withFirstValue(req, h, inc.stampedVia, 'Via'));
        firstVia = false;
        break;
      case 'route':
        if (toPop > 0) {
          const v = req.value(h);
          const drop = Math.min(toPop, countValues(v));
          edits.set(h, withoutFirstValues(v, drop, 'Route'));
          toPop -= drop;
        }
        break;
      case 'proxy-authorization': {
        const v = req.value(h);
        if (v.indexOf(`"${realm}"`) !== -1) edits.set(h, null);
        break;
      }
      default:
        break;
    }
  }
  return { edits, addMaxForwards: mfSeen ? undefined : `Max-Forwards: ${inc.maxForwards - 1}` };
}

/** The Route header lines left after the edits (for a branch's CANCEL and ACK), each with CRLF. */
export function remainingRouteLines(req: SipMessage, edits: Edits): string {
  let s = '';
  for (const h of req.headers) {
    if (h.name !== 'route') continue;
    const e = edits.get(h);
    if (e === null) continue;
    s += (e ?? `Route: ${req.value(h)}`) + '\r\n';
  }
  return s;
}
