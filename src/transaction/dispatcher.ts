/**
 * The entry of every message (transport -> here -> transaction layer): parse, count, answer
 * what cannot be a request at all with 400 (or 505) statelessly, read once what matching and
 * routing need, and hand the request or response to the transaction layer. Never throws.
 */
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import { parseCSeq, parseNameAddr, topVia } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import { parseDecimalString } from '../sip/numbers.js';
import { parseMessage } from '../sip/parser.js';
import { buildResponse } from '../sip/serialize.js';
import { stampVia } from '../sip/stamp-via.js';
import { getParam } from '../sip/uri.js';
import { TRANSPORTS } from '../transport/names.js';
import { replyTarget } from '../transport/reply-target.js';
import type { Endpoint } from '../transport/endpoint.js';
import type { LocalAddress } from '../transport/transport.js';
import type { LocalIds } from './ids.js';
import type { TransactionLayer } from './layer.js';
import type { IncomingRequest } from './request.js';

/** Max-Forwards when a request has none (§8.1.1.6). */
const MAX_FORWARDS_DEFAULT = 70;
/** Max-Forwards is at most 255 (§20.22 allows leading zeros: RFC 4475 wsinv sends "0068"). */
const MAX_FORWARDS_LIMIT = 255;

/** Counts messages in; implemented by metrics, which the dispatcher does not know. */
export interface MessageCounter {
  request(method: string): void;
  response(status: number): void;
}

export interface DispatcherDeps {
  layer: TransactionLayer;
  ids: LocalIds;
  /** Stateless sends (the 400s answered here). */
  send(dest: Endpoint, data: Buffer): void;
  counter: MessageCounter;
  log: Logger;
}

export class Dispatcher {
  private readonly badInput: RateLimitedLog;

  constructor(private readonly d: DispatcherDeps) {
    this.badInput = new RateLimitedLog(d.log, 10_000, 20);
  }

  /** The transports' message handler. */
  onMessage(data: Buffer, source: Endpoint, local: LocalAddress): void {
    try {
      const r = parseMessage(data);
      if (!r.ok) return this.malformed(r.error, r.msg, r.otherVersion === true, data, source);
      const msg = r.msg;
      if (msg.isRequest) {
        this.d.counter.request(msg.method);
        this.onRequest(msg, source, local);
      } else {
        this.d.counter.response(msg.status);
        this.d.layer.receiveResponse(msg);
      }
    } catch (err) {
      this.badInput.warn({ err, source: `${source.address}:${source.port}` }, 'message handling failed; dropped');
    }
  }

  private malformed(error: string, msg: SipMessage | undefined, otherVersion: boolean, data: Buffer, source: Endpoint): void {
    this.badInput.warn({ source: `${source.transport}:${source.address}:${source.port}`, error, bytes: data.length }, 'malformed message');
    // Answer 400 (or 505) only to a request whose Via we can read; responses and the rest are dropped.
    if (!msg || !msg.isRequest || msg.method === 'ACK') return;
    const via = topVia(msg);
    if (!via) return;
    const [status, reason] = otherVersion ? [505, 'Version Not Supported'] : [400, `Bad Request (${error})`];
    this.d.send(replyTarget(via, source), buildResponse(msg, status, reason, { toTag: this.d.ids.tag() }));
  }

  private onRequest(req: SipMessage, source: Endpoint, local: LocalAddress): void {
    const via = topVia(req);
    if (!via) {
      this.badInput.warn({ source: `${source.address}:${source.port}` }, 'request without valid Via dropped');
      return;
    }
    const replyTo = replyTarget(via, source);
    const callId = req.header('call-id');
    const from = req.header('from');
    const to = req.header('to');
    const cseq = parseCSeq(req.header('cseq'));
    let bad: string | undefined;
    let fromTag = '';
    let toTag = '';
    let maxForwards = MAX_FORWARDS_DEFAULT;
    if (callId === undefined || from === undefined || to === undefined || cseq === undefined) {
      bad = 'Bad Request (missing or bad Call-ID, From, To or CSeq)';
    } else if (cseq.method !== req.method) {
      bad = 'Bad Request (CSeq method does not match)';
    } else {
      const fromNa = parseNameAddr(from);
      const toNa = parseNameAddr(to);
      if (!fromNa || !toNa) bad = 'Bad Request (bad From or To)';
      else {
        fromTag = getParam(fromNa.params, 'tag') || '';
        toTag = getParam(toNa.params, 'tag') || '';
        const mf = req.header('max-forwards');
        if (mf !== undefined) {
          maxForwards = parseDecimalString(mf, MAX_FORWARDS_LIMIT);
          if (maxForwards < 0) bad = 'Bad Request (bad Max-Forwards)';
        }
      }
    }
    if (bad !== undefined) {
      if (req.method !== 'ACK') this.d.send(replyTo, buildResponse(req, 400, bad, { toTag: this.d.ids.tag() }));
      return;
    }
    const inc: IncomingRequest = {
      req,
      source,
      local,
      via,
      stampedVia: stampVia(via.value, via, source.address, source.port, !TRANSPORTS[source.transport].reliable),
      replyTo,
      callId: callId!,
      fromTag,
      toTag,
      cseq: cseq!.seq,
      maxForwards,
      key: '',
    };
    this.d.layer.receiveRequest(inc);
  }
}
