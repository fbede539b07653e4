import { hostPort } from '../sip/uri.js';
import { viaToken } from './names.js';
import type { LocalAddress } from './transport.js';

/** Our Via value for a request we send from local with that branch id (rport: RFC 3581). */
export function ourVia(local: LocalAddress, branchId: string): string {
  return `SIP/2.0/${viaToken(local.transport)} ${hostPort(local.host, local.port)};branch=${branchId};rport`;
}
