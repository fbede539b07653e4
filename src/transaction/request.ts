import type { Via } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import type { Endpoint } from '../transport/endpoint.js';
import type { LocalAddress } from '../transport/transport.js';

/**
 * A request as the dispatcher read it, once: what transaction matching and every transaction
 * user need. One object per request, handed up the pipeline.
 */
export interface IncomingRequest {
  req: SipMessage;
  /** Where it came from (for streams: the connection's remote end). */
  source: Endpoint;
  /** The listener it arrived on. */
  local: LocalAddress;
  via: Via;
  /** Top Via value with received/rport filled in (RFC 3581), or undefined when unchanged. */
  stampedVia: string | undefined;
  /** Where responses go (§18.2.2, RFC 3581), computed once. */
  replyTo: Endpoint;
  callId: string;
  fromTag: string;
  toTag: string;
  cseq: number;
  maxForwards: number;
  /** The server transaction key (§17.2.3); the layer fills it in. */
  key: string;
}
