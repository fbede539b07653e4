import { buildResponse } from '../sip/serialize.js';
import type { LocalIds } from '../transaction/ids.js';
import type { IncomingRequest } from '../transaction/request.js';

/** A response to generate here (a check's refusal, the registrar's answer). */
export interface LocalAnswer {
  status: number;
  reason: string;
  headers?: readonly string[];
}

const NO_HEADERS: readonly string[] = [];

/** A response generated here: our To tag on finals, the stamped Via (RFC 3581) on top. */
export function localResponse(inc: IncomingRequest, ids: LocalIds, status: number, reason: string, headers: readonly string[] = NO_HEADERS): Buffer {
  return build(inc, status > 100 ? ids.tag() : undefined, status, reason, headers);
}

/**
 * A final response sent without a transaction (refusals, challenges, the registrar's answers):
 * its To tag is the same for every retransmission of the request (§8.2.7).
 */
export function statelessResponse(inc: IncomingRequest, ids: LocalIds, status: number, reason: string, headers: readonly string[] = NO_HEADERS): Buffer {
  return build(inc, ids.statelessTag(inc.key), status, reason, headers);
}

function build(inc: IncomingRequest, toTag: string | undefined, status: number, reason: string, headers: readonly string[]): Buffer {
  const opts: { toTag?: string; topVia?: string; headers: readonly string[] } = { headers };
  if (toTag !== undefined) opts.toTag = toTag;
  if (inc.stampedVia !== undefined) opts.topVia = inc.stampedVia;
  return buildResponse(inc.req, status, reason, opts);
}
