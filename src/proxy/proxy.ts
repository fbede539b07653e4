/**
 * The proxy core (RFC 3261 §16): validates requests, matches them to transactions, hands
 * REGISTER to the registrar, routes INVITEs to the devices of an extension (or to a trunk),
 * relays in-dialog requests along the Record-Route, and feeds the call tracker.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Logger } from 'pino';
import type { Config, TrunkConfig } from '../config/types.js';
import type { CallTracker } from '../calls/tracker.js';
import { statusKind, type SipMetrics, type CallOutcome } from '../metrics.js';
import { decideNewCall } from '../policy/busy-on-busy.js';
import type { Authenticator } from '../registrar/authenticator.js';
import type { LocationService } from '../registrar/location.js';
import type { Registrar } from '../registrar/registrar.js';
import { parseCSeq, parseNameAddr, parseVia, responseBranch, tagOf, topVia, type Via } from '../sip/headers.js';
import { countValues, isAsciiString, type HeaderField, type SipMessage } from '../sip/message.js';
import { isOtherVersion, parseMessage } from '../sip/parser.js';
import { buildResponse, rewrite, stripTopVia, withFirstValue, withoutFirstValues } from '../sip/serialize.js';
import { getParam, hostPort, parseUri, unescapeUser, type SipUri } from '../sip/uri.js';
import type { Directory } from '../state/directory.js';
import type { Binding, CallParty } from '../state/types.js';
import { serverKey, type TransactionLayer } from '../transaction/layer.js';
import type { ServerTransaction } from '../transaction/server.js';
import type { Endpoint, LocalAddress, Transports } from '../transport/transports.js';
import { parseEndpoint } from '../transport/endpoint.js';
import { transportOfUriParam, viaToken } from '../transport/names.js';
import { replyTarget, responseTarget } from '../transport/reply-target.js';
import { Fork, type BranchReport, type BranchTarget, type CallOutcomeName, type ForkHost, type ForkOptions } from './fork.js';
import { InfoLine } from '../log/info-line.js';
import { callOutcomeMembers } from '../json-text.js';
import { RateLimitedLog } from '../log/rate-limited-log.js';

const ALLOW = 'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK, NOTIFY, REFER, MESSAGE';
const MAX_FORWARDS_DEFAULT = 70;

export interface ProxyDeps {
  config: () => Config;
  transports: Transports;
  /**
   * Sends what the proxy answers or relays statelessly (REGISTER/OPTIONS answers, 400s, ACK
   * for 2xx, late 2xx): the same path as the transaction layer's sends, so every message out
   * is counted once.
   */
  send(dest: Endpoint, data: Buffer): void;
  layer: TransactionLayer;
  directory: Directory;
  location: LocationService;
  auth: Authenticator;
  registrar: Registrar;
  calls: CallTracker;
  metrics: SipMetrics;
  log: Logger;
}

/** What answers a request: a server transaction, or a stateless reply. */
interface Responder {
  respond(status: number, data: Buffer): void;
}

/** Per-request facts computed once while routing. */
interface Incoming {
  req: SipMessage;
  source: Endpoint;
  local: LocalAddress;
  via: Via;
  /** Top Via value with received/rport filled in (RFC 3581), or undefined when unchanged. */
  stampedVia: string | undefined;
  replyTo: Endpoint;
  callId: string;
  fromTag: string;
  toTag: string;
  cseq: number;
  maxForwards: number;
}

export class Proxy {
  readonly layer: TransactionLayer;
  readonly log: Logger;
  /** The "call outcome" line, one per call: see log/info-line.ts. */
  private readonly callLine: InfoLine;
  private readonly badInput: RateLimitedLog;
  private branchSeq = 0;
  /** Where each binding is reached, parsed once per binding rather than once per call. */
  private readonly bindingDest = new WeakMap<Binding, Endpoint>();
  private readonly branchPrefix = `z9hG4bK-sb${randomBytes(4).toString('hex')}`;
  private readonly toTagSeed = randomBytes(4).toString('hex');
  /** Hosts naming this proxy (lower case): listeners, advertise, the domain. */
  ourHosts = new Set<string>();
  private ourPorts = new Set<number>();

  constructor(private readonly d: ProxyDeps) {
    this.layer = d.layer;
    this.log = d.log;
    this.callLine = new InfoLine(d.log);
    this.badInput = new RateLimitedLog(d.log, 10_000, 20);
    this.refreshIdentity();
  }

  /** Recompute who we are (after start and on reload). */
  refreshIdentity(): void {
    const cfg = this.d.config();
    this.ourHosts = new Set([cfg.domain.toLowerCase()]);
    if (cfg.advertise) this.ourHosts.add(cfg.advertise.toLowerCase());
    this.ourPorts = new Set();
    for (const l of cfg.listen) {
      this.ourHosts.add(l.host.toLowerCase());
      this.ourPorts.add(l.port);
    }
    for (const l of this.d.transports.locals) this.ourHosts.add(l.host.toLowerCase());
  }

  /** Entry point for every datagram or framed stream message. Never throws. */
  onMessage(data: Buffer, source: Endpoint, local: LocalAddress): void {
    try {
      const r = parseMessage(data);
      if (!r.ok) {
        this.malformed(r.error, r.msg, data, source);
        return;
      }
      const msg = r.msg;
      if (msg.isRequest) {
        this.d.metrics.messageIn(msg.method);
        this.onRequest(msg, source, local);
      } else {
        this.d.metrics.messageIn(statusKind(msg.status));
        this.onResponse(msg);
      }
    } catch (err) {
      this.badInput.warn({ err, source: `${source.address}:${source.port}` }, 'message handling failed; dropped');
    }
  }

  private malformed(error: string, msg: SipMessage | undefined, data: Buffer, source: Endpoint): void {
    this.badInput.warn({ source: `${source.transport}:${source.address}:${source.port}`, error, bytes: data.length }, 'malformed message');
    // Answer 400 (or 505) only to a request whose Via we can read; responses and the rest are dropped.
    if (!msg || !msg.isRequest || msg.method === 'ACK') return;
    const via = topVia(msg);
    if (!via) return;
    const replyTo = replyTarget(via, source);
    const wrongVersion = error === 'unsupported SIP version' && isOtherVersion(data);
    const [status, reason] = wrongVersion ? [505, 'Version Not Supported'] : [400, `Bad Request (${error})`];
    this.sendTo(replyTo, buildResponse(msg, status, reason, { toTag: this.localTag() }));
  }

  // ---------------------------------------------------------------- requests

  private onRequest(req: SipMessage, source: Endpoint, local: LocalAddress): void {
    const via = topVia(req);
    if (!via) {
      this.badInput.warn({ source: `${source.address}:${source.port}` }, 'request without valid Via dropped');
      return;
    }
    const replyTo = replyTarget(via, source);
    const reject = (status: number, reason: string, headers: string[] = []): void => {
      if (req.method === 'ACK') return;
      this.sendTo(replyTo, buildResponse(req, status, reason, { toTag: this.localTag(), headers }));
    };
    const callId = req.header('call-id');
    const from = req.header('from');
    const to = req.header('to');
    const cseq = parseCSeq(req.header('cseq'));
    if (callId === undefined || from === undefined || to === undefined || cseq === undefined) {
      return reject(400, 'Bad Request (missing or bad Call-ID, From, To or CSeq)');
    }
    if (cseq.method !== req.method) return reject(400, 'Bad Request (CSeq method does not match)');
    const fromNa = parseNameAddr(from);
    const toNa = parseNameAddr(to);
    if (!fromNa || !toNa) return reject(400, 'Bad Request (bad From or To)');
    let maxForwards = MAX_FORWARDS_DEFAULT;
    const mf = req.header('max-forwards');
    if (mf !== undefined) {
      // Leading zeros are valid (RFC 4475 wsinv: "0068"); only the value is bounded.
      maxForwards = parseDecimalString(mf, 255);
      if (maxForwards < 0) return reject(400, 'Bad Request (bad Max-Forwards)');
    }
    const inc: Incoming = {
      req,
      source,
      local,
      via,
      stampedVia: stampVia(via.value, via, source),
      replyTo,
      callId,
      // From the name-addrs just parsed: tagOf() would parse each header again.
      fromTag: getParam(fromNa.params, 'tag') || '',
      toTag: getParam(toNa.params, 'tag') || '',
      cseq: cseq.seq,
      maxForwards,
    };
    const key = serverKey(req, via, cseq.seq, inc.fromTag);

    if (req.method === 'ACK') {
      const tx = this.layer.findServer(key);
      if (tx) return tx.ack(); // ACK for our non-2xx final response (§17.2.1)
      return this.routeInDialog(inc, undefined); // ACK for a 2xx: its own transaction (§13.2.2.4)
    }
    const existing = this.layer.findServer(key);
    if (existing) return existing.retransmission();

    if (req.method === 'CANCEL') {
      const tx = this.layer.createServer(key, req, replyTo);
      const inviteKey = key.slice(0, key.lastIndexOf('\n') + 1) + 'INVITE';
      const inviteTx = this.layer.findServer(inviteKey);
      if (!inviteTx) return tx.respond(481, this.response(inc, 481, 'Call/Transaction Does Not Exist'));
      tx.respond(200, this.response(inc, 200, 'OK'));
      const fork = inviteTx.cancellable; // the fork, until it settled
      fork?.cancel();
      const invite = inviteTx.request; // set until the INVITE got its final response
      if (!fork && invite !== undefined) inviteTx.respond(487, this.response({ ...inc, req: invite }, 487, 'Request Terminated'));
      return;
    }

    const ruri = parseUri(req.uri);
    const uriIsOurs = ruri !== undefined && ruri.scheme !== 'tel' && this.ourHosts.has(ruri.host);
    // REGISTER and OPTIONS to the proxy itself are answered statelessly, as Kamailio's
    // registrar does with sl: both are idempotent, a retransmission is simply answered again,
    // and no transaction is kept for 64*T1 per request (at 100,000 registered devices those
    // transactions were most of the memory).
    const forUs =
      inc.toTag === '' &&
      (req.method === 'REGISTER' || (req.method === 'OPTIONS' && uriIsOurs && (ruri.user === '' || !this.d.directory.extension(unescapeUser(ruri.user)))));
    if (forUs) return this.answerLocally(inc, { respond: (_status, data) => this.sendTo(replyTo, data) }, ruri, uriIsOurs);

    const tx = this.layer.createServer(key, req, replyTo);
    if (req.method === 'INVITE') tx.respond(100, this.response(inc, 100, 'Trying'));
    if (!this.acceptable(inc, tx, ruri)) return;
    if (inc.toTag !== '') return this.routeInDialog(inc, tx);
    switch (req.method) {
      case 'INVITE':
      case 'MESSAGE':
      case 'OPTIONS':
        return this.routeInitial(inc, tx, ruri!.user, uriIsOurs); // acceptable() refused a missing R-URI
      case 'BYE':
        return this.respond(tx, inc, 481, 'Call/Transaction Does Not Exist');
      default:
        return this.respond(tx, inc, 405, 'Method Not Allowed', [ALLOW]);
    }
  }

  /**
   * Checks every request passes before it is routed (§16.3); answers and returns false when one
   * fails. ruri: the request's Request-URI as the caller already parsed it.
   */
  private acceptable(inc: Incoming, tx: Responder, ruri: SipUri | undefined, checkLoop = true): boolean {
    const req = inc.req;
    if (inc.maxForwards === 0) return this.respond(tx, inc, 483, 'Too Many Hops'), false;
    const proxyRequire = req.header('proxy-require');
    if (proxyRequire !== undefined) return this.respond(tx, inc, 420, 'Bad Extension', [`Unsupported: ${proxyRequire}`]), false;
    if (!ruri || (ruri.scheme !== 'sip' && ruri.scheme !== 'sips' && ruri.scheme !== 'tel')) {
      return this.respond(tx, inc, 416, 'Unsupported URI Scheme'), false;
    }
    if (checkLoop && this.isLoop(inc)) return this.respond(tx, inc, 482, 'Loop Detected'), false;
    return true;
  }

  /** REGISTER and OPTIONS addressed to the proxy: the registrar, or a keep-alive answer. */
  private answerLocally(inc: Incoming, reply: Responder, ruri: SipUri | undefined, uriIsOurs: boolean): void {
    const req = inc.req;
    if (!this.acceptable(inc, reply, ruri, false)) return;
    if (req.method === 'OPTIONS') return this.respond(reply, inc, 200, 'OK', [ALLOW, 'Accept: application/sdp']);
    if (!uriIsOurs) return this.respond(reply, inc, 403, 'Forbidden (not our domain)');
    const require = req.header('require');
    if (require !== undefined) return this.respond(reply, inc, 420, 'Bad Extension', [`Unsupported: ${require}`]);
    const r = this.d.registrar.register(req, inc.source);
    this.respond(reply, inc, r.status, r.reason, r.headers);
  }
  /** Out-of-dialog INVITE (or MESSAGE/OPTIONS to a number): authenticate, then fork or reject. */
  private routeInitial(inc: Incoming, tx: ServerTransaction, rawUser: string, uriIsOurs: boolean): void {
    const cfg = this.d.config();
    const req = inc.req;
    const trunk = this.trunkOf(inc.source, cfg.trunks);
    let caller: CallParty | undefined;
    if (!trunk) {
      const a = this.d.auth.authenticate(req, 'proxy');
      if (!a.ok) return this.respond(tx, inc, a.status, a.reason, a.headers);
      caller = { extension: a.device.extension, device: a.device.username, direction: 'outbound' };
    }
    const number = unescapeUser(rawUser.split(';')[0]!);
    const ext = uriIsOurs || trunk ? this.d.directory.extension(number) : undefined;
    const logCall = (outcome: CallOutcomeName, status: number, branches: readonly BranchReport[] = []): void => {
      if (req.method !== 'INVITE') return;
      this.d.metrics.callOutcome(metricOutcome(outcome));
      if (!this.callLine.enabled) return;
      this.callLine.write(
        callOutcomeMembers({ callId: inc.callId, extension: ext?.number ?? number, from: caller?.device ?? trunk?.name ?? '', outcome, status, branches }),
      );
    };
    if (ext) {
      if (req.method === 'INVITE' && decideNewCall(this.d.directory.busyOnBusy(ext.number), this.d.calls.activeFor(ext.number)) === 'busy') {
        this.respond(tx, inc, 486, 'Busy Here');
        return logCall('busy-on-busy', 486);
      }
      const targets: BranchTarget[] = [];
      for (const dev of ext.devices) {
        if (caller && dev.username === caller.device) continue; // do not ring the calling device itself
        for (const b of this.d.location.lookup(dev.username)) {
          const dest = this.destOf(b);
          if (dest) targets.push({ uri: b.contact, dest, device: b.username, extension: ext.number });
        }
      }
      if (targets.length === 0) {
        this.respond(tx, inc, 480, 'Temporarily Unavailable');
        return logCall('unavailable', 480);
      }
      const ringSec = ext.ringTimeout ?? cfg.calls.ringTimeout;
      return this.fork(inc, tx, targets, ringSec * 1000, ext.declineEndsCall, caller, logCall);
    }
    // Not an extension: a device may call out through the first trunk.
    const out = cfg.trunks[0];
    if (!caller || !out || number === '') {
      this.respond(tx, inc, 404, 'Not Found');
      return logCall('unavailable', 404);
    }
    const port = out.port ?? 5060;
    const target: BranchTarget = {
      uri: `sip:${rawUser}@${hostPort(out.host, port)}`,
      dest: { transport: 'udp', address: out.host, port },
      device: '',
      extension: '',
    };
    // No ring timeout towards a trunk: the carrier plays its own no-answer treatment (voicemail,
    // announcements); Timer C still bounds the leg.
    return this.fork(inc, tx, [target], 0, false, caller, logCall);
  }

  private fork(
    inc: Incoming,
    tx: ServerTransaction,
    targets: BranchTarget[],
    ringTimeoutMs: number,
    declineEndsCall: boolean,
    caller: CallParty | undefined,
    logCall: (o: CallOutcomeName, s: number, branches?: readonly BranchReport[]) => void,
  ): void {
    // Only INVITE creates a dialog, so only INVITE is record-routed and tracked as a call.
    const isInvite = inc.req.method === 'INVITE';
    const host = this.branchHost(inc, this.forwardEdits(inc, 0), isInvite);
    const fork = new Fork(host, tx, inc.req.header('to') ?? '', targets, {
      ringTimeoutMs: isInvite ? ringTimeoutMs : 0,
      declineEndsCall,
      onAnswer: isInvite ? this.callTracking(inc.callId, inc.fromTag, caller) : undefined,
      onDone: (outcome, status, branches) => logCall(outcome, status, branches),
    });
    fork.start();
  }

  /**
   * What a 2xx does to the call tracker: the dialog it confirms is a call of the caller's and
   * the answering device's extensions. Made here, apart from the request: the fork keeps this
   * for 32 s after the call is set up (a forking race may still bring a second 2xx), and a
   * closure over the request would keep the whole INVITE alive for as long.
   */
  private callTracking(callId: string, fromTag: string, caller: CallParty | undefined): ForkOptions['onAnswer'] {
    const calls = this.d.calls;
    const config = this.d.config;
    return (target, res) => {
      const parties: CallParty[] = [];
      if (caller) parties.push(caller);
      if (target.extension) parties.push({ extension: target.extension, device: target.device, direction: 'inbound' });
      if (parties.length === 0) return;
      calls.confirmed(callId, fromTag, tagOf(res.header('to')), parties, config().calls.maxCallDuration);
    };
  }

  /**
   * In-dialog requests (To tag present) and ACKs for 2xx: loose routing along the route set
   * (§16.4, §16.12). Only requests that carry our Record-Route are relayed: this is not an
   * open relay. BYE ends the tracked call.
   */
  private routeInDialog(inc: Incoming, tx: ServerTransaction | undefined): void {
    const req = inc.req;
    const routes = this.ourRoutes(req);
    if (routes.popped === 0) {
      if (tx) this.respond(tx, inc, 404, 'Not Found (no route)');
      return;
    }
    const next = routes.nextRoute ?? req.uri;
    const dest = this.resolve(next);
    if (!dest) {
      if (tx) this.respond(tx, inc, 404, 'Not Found (no next hop)');
      return;
    }
    if (req.method === 'BYE') {
      const call = this.d.calls.find(inc.callId, inc.fromTag, inc.toTag);
      if (call) this.d.calls.end(call, 'bye');
    }
    const edits = this.forwardEdits(inc, routes.popped);
    if (!tx) {
      // ACK for 2xx is forwarded statelessly; its Via branch derives from the upstream one.
      const via = branchVia(this.d.transports.localFor(dest.transport), `${this.branchPrefix}a${inc.via.branch}`);
      this.sendTo(dest, rewrite(req, `${req.method} ${req.uri} SIP/2.0`, `Via: ${via}\r\n`, edits, req.isAscii));
      return;
    }
    const host = this.branchHost(inc, edits, false);
    const target: BranchTarget = { uri: req.uri, dest, device: '', extension: '' };
    new Fork(host, tx, req.header('to') ?? '', [target], { ringTimeoutMs: 0, declineEndsCall: false }).start();
  }

  /** Our own Route entries at the top (one, or two with double record-routing) and the next one. */
  private ourRoutes(req: SipMessage): { popped: number; nextRoute: string | undefined } {
    const routes = req.values('route');
    let popped = 0;
    while (popped < routes.length && this.isOurUri(parseNameAddr(routes[popped]!)?.uri)) popped++;
    const nextRoute = popped < routes.length ? parseNameAddr(routes[popped]!)?.uri : undefined;
    return { popped, nextRoute };
  }

  private isOurUri(uri: string | undefined): boolean {
    const u = uri && parseUri(uri);
    if (!u) return false;
    if (u.host === this.d.config().domain.toLowerCase()) return true;
    return this.ourHosts.has(u.host) && this.ourPorts.has(u.port || 5060);
  }

  /** Header edits shared by every branch: Max-Forwards, stamped Via, our Route entries, our credentials. */
  private forwardEdits(inc: Incoming, popRoutes: number): Map<HeaderField, string | null> {
    const req = inc.req;
    const edits = new Map<HeaderField, string | null>();
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
          // §22.3: credentials for our realm are consumed here, not passed on.
          const v = req.value(h);
          if (v.indexOf(`"${this.d.config().domain}"`) !== -1) edits.set(h, null);
          break;
        }
        default:
          break;
      }
    }
    if (!mfSeen) edits.set(MAX_FORWARDS_MARK, `Max-Forwards: ${inc.maxForwards - 1}`);
    return edits;
  }

  /** The per-request ForkHost: builds branch requests from the shared edits. */
  private branchHost(inc: Incoming, edits: Map<HeaderField, string | null>, recordRoute: boolean): ForkHost {
    const req = inc.req;
    const mfLine = edits.get(MAX_FORWARDS_MARK);
    edits.delete(MAX_FORWARDS_MARK);
    const self = this;
    const cseqNum = inc.cseq;
    const routeLines = remainingRoutes(req, edits);
    const hash = loopHash(inc);
    return {
      layer: this.layer,
      log: this.log,
      newBranchId: () => this.newBranchId(hash),
      upstream: stripTopVia, // not a closure here: the fork keeps it after it let go of the rest
      localResponse: (status, reason) => this.response(inc, status, reason),
      buildBranchRequest(target, branchId) {
        const local = self.d.transports.localFor(target.dest.transport);
        let prepend = `Via: ${branchVia(local, branchId)}\r\n`;
        if (recordRoute) prepend += self.recordRoute(inc.local, local);
        if (mfLine) prepend += `${mfLine}\r\n`;
        // Our Via and Record-Route name hosts the config validated as IP addresses or host names.
        return rewrite(req, `${req.method} ${target.uri} SIP/2.0`, prepend, edits, req.isAscii && isAsciiString(target.uri));
      },
      buildBranchAux(method, target, branchId, to, extra) {
        const via = branchVia(self.d.transports.localFor(target.dest.transport), branchId);
        let s = `${method} ${target.uri} SIP/2.0\r\nVia: ${via}\r\nMax-Forwards: 70\r\n`;
        s += `From: ${req.header('from')}\r\nTo: ${to}\r\nCall-ID: ${inc.callId}\r\nCSeq: ${cseqNum} ${method}\r\n`;
        s += routeLines;
        for (const line of extra) s += `${line}\r\n`;
        s += 'Content-Length: 0\r\n\r\n';
        const ascii = req.isAscii && isAsciiString(target.uri) && isAsciiString(to) && extra.every(isAsciiString);
        return Buffer.from(s, ascii ? 'latin1' : 'utf8');
      },
    };
  }

  /**
   * Record-Route (§16.6 step 4). When the two legs use different transports, two entries
   * (Kamailio's double record-routing) so each side reaches us on its own transport.
   */
  private recordRoute(inbound: LocalAddress, outbound: LocalAddress): string {
    const rr = (l: LocalAddress): string => `Record-Route: <sip:${hostPort(l.host, l.port)};transport=${l.transport};lr>\r\n`;
    if (inbound.transport === outbound.transport && inbound.host === outbound.host && inbound.port === outbound.port) return rr(inbound);
    return rr(outbound) + rr(inbound);
  }

  private newBranchId(hash: string): string {
    // No message text in it, so nothing to own here: the layer copies the key it keeps.
    return `${this.branchPrefix}${hash}.${(++this.branchSeq).toString(36)}`;
  }

  private localTag(): string {
    return `${this.toTagSeed}${(++this.branchSeq).toString(36)}`;
  }

  /**
   * §16.3 step 4: a request that carries one of our Vias whose branch holds the loop hash of
   * this very request (same Request-URI, Call-ID, From tag, CSeq) came back unchanged: a loop.
   * A spiral (new Request-URI) has another hash and is let through.
   */
  private isLoop(inc: Incoming): boolean {
    // Only a request that already passed a proxy can have looped: most have one Via.
    if (!inc.req.hasSeveral('via', inc.via.alone)) return false;
    const viaValues = inc.req.values('via');
    const mark = this.branchPrefix + loopHash(inc) + '.';
    for (let i = 1; i < viaValues.length; i++) {
      const v = parseVia(viaValues[i]!);
      if (v && v.branch.startsWith(mark)) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- responses

  private onResponse(res: SipMessage): void {
    const branch = responseBranch(res);
    if (branch === undefined) return;
    const cseq = parseCSeq(res.header('cseq'));
    if (!cseq) return;
    const tx = this.layer.findClient(branch, cseq.method);
    if (tx) return tx.receive(res);
    // No transaction (it ended): a late 2xx to an INVITE still goes upstream (§16.7 step 10 / RFC 6026).
    if (res.status >= 200 && res.status < 300 && cseq.method === 'INVITE' && branch.startsWith(this.branchPrefix)) {
      const next = res.values('via')[1];
      const up = next ? parseVia(next) : undefined;
      if (up) this.sendTo(responseTarget(up), stripTopVia(res));
    }
  }

  // ---------------------------------------------------------------- helpers

  private response(inc: Incoming, status: number, reason: string, headers: string[] = []): Buffer {
    const opts: { toTag?: string; topVia?: string; headers: string[] } = { headers };
    if (status > 100) opts.toTag = this.localTag();
    if (inc.stampedVia !== undefined) opts.topVia = inc.stampedVia;
    return buildResponse(inc.req, status, reason, opts);
  }

  private respond(tx: Responder, inc: Incoming, status: number, reason: string, headers: string[] = []): void {
    tx.respond(status, this.response(inc, status, reason, headers));
  }

  private sendTo(dest: Endpoint, data: Buffer): void {
    this.d.send(dest, data);
  }

  private destOf(b: Binding): Endpoint | undefined {
    let dest = this.bindingDest.get(b);
    if (dest === undefined) {
      dest = parseEndpoint(b.source);
      if (dest) this.bindingDest.set(b, dest);
    }
    return dest;
  }

  private trunkOf(source: Endpoint, trunks: readonly TrunkConfig[]): TrunkConfig | undefined {
    for (const t of trunks) if (t.host === source.address && (t.port === undefined || t.port === source.port)) return t;
    return undefined;
  }

  /**
   * Where a URI is reached: a registered contact goes to the address it registered from (NAT),
   * anything else to host:port with its transport parameter. Hostnames other than ours are
   * not resolved (no DNS in a PBX core): undefined.
   */
  private resolve(uri: string): Endpoint | undefined {
    const b = this.d.location.byContactUri(uri);
    if (b) return this.destOf(b);
    const u = parseUri(uri);
    if (!u || !net.isIP(u.host)) return undefined;
    return { transport: transportOfUriParam(getParam(u.params, 'transport')), address: u.host, port: u.port || 5060 };
  }
}

/** Our Via value for a request we send from local with that branch id. */
function branchVia(local: LocalAddress, branchId: string): string {
  return `SIP/2.0/${viaToken(local.transport)} ${hostPort(local.host, local.port)};branch=${branchId};rport`;
}

/** Marker key for the Max-Forwards line to insert when the request had none. */
const MAX_FORWARDS_MARK: HeaderField = { name: '', start: 0, end: 0, valueStart: 0, valueEnd: 0 };

/** Route header lines left after our entries are popped, for CANCEL/ACK of a branch. */
function remainingRoutes(req: SipMessage, edits: Map<HeaderField, string | null>): string {
  let s = '';
  for (const h of req.headers) {
    if (h.name !== 'route') continue;
    const e = edits.get(h);
    if (e === null) continue;
    s += (e ?? `Route: ${req.value(h)}`) + '\r\n';
  }
  return s;
}

/** RFC 3581 §4: fill received and rport in the top Via when the source differs or rport asked. */
export function stampVia(value: string, via: Via, source: Endpoint): string | undefined {
  const needReceived = via.host !== source.address;
  const needRport = via.rport === '' && source.transport === 'udp';
  if (!needReceived && !needRport) return undefined;
  let v = value;
  if (needRport) v = v.replace(/;\s*rport(?=;|$|\s)/i, `;rport=${source.port}`);
  if (needReceived && via.received === undefined) v += `;received=${source.address}`;
  return v;
}

function metricOutcome(o: CallOutcomeName): CallOutcome {
  return o === 'busy-on-busy' ? 'busy_on_busy' : o === 'no-answer' ? 'no_answer' : o;
}

/** FNV-1a over the fields that identify a request for loop detection (§16.6 step 8). */
function loopHash(inc: Incoming): string {
  // FNV-1a over "uri\ncall-id\nfrom-tag\ncseq", part by part: reading a concatenation of
  // them with charCodeAt would first flatten it into a copy.
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

/** Decimal up to max with any number of leading zeros, else -1. */
function parseDecimalString(v: string, max: number): number {
  if (v.length === 0 || v.length > 16) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n <= max ? n : -1;
}
