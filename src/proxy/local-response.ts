import { buildResponse } from '../sip/serialize.js';
import type { LocalIds } from '../transaction/ids.js';
import type { IncomingRequest } from '../transaction/request.js';

/** What answers a request: a server transaction, or a stateless reply. */
export interface Responder {
  respond(status: number, data: Buffer): void;
}

/** A response to generate here (a check's refusal, the registrar's answer), sent by whoever holds the Responder. */
export interface LocalAnswer {
  status: number;
  reason: string;
  headers?: readonly string[];
}

const NO_HEADERS: readonly string[] = [];

/** A response generated here: our To tag on finals, the stamped Via (RFC 3581) on top. */
export function localResponse(inc: IncomingRequest, ids: LocalIds, status: number, reason: string, headers: readonly string[] = NO_HEADERS): Buffer {
  const opts: { toTag?: string; topVia?: string; headers: readonly string[] } = { headers };
  if (status > 100) opts.toTag = ids.tag();
  if (inc.stampedVia !== undefined) opts.topVia = inc.stampedVia;
  return buildResponse(inc.req, status, reason, opts);
}
