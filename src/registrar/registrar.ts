/**
 * The registrar (RFC 3261 §10.3): authenticates REGISTER, applies Contact/Expires rules and
 * answers with the device's current bindings.
 */
import type { RegistrarConfig } from './types.js';
import type { SipMessage } from '../sip/message.js';
import { parseCSeq, parseNameAddr, topVia, type Via } from '../sip/headers.js';
import { getParam, parseUri, unescapeUser, type SipUri } from '../sip/uri.js';
import { parseDecimalString } from '../sip/numbers.js';
import type { Endpoint } from '../transport/endpoint.js';
import type { Binding } from '../location/binding.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { LocationService } from '../location/location.js';
import { contactDest } from '../location/nat.js';
import { ownString, StringPool } from '../lib/own.js';

export interface Reply {
  status: number;
  reason: string;
  headers: string[];
}

/** Seconds for a Contact: its expires param, else the Expires header, else the default. */
function requestedExpires(params: string, headerExpires: number | undefined, def: number): number | undefined {
  const p = getParam(params, 'expires');
  if (p !== undefined) return parseSeconds(p);
  return headerExpires ?? def;
}

/** Delta-seconds (RFC 3261 §20.19: beyond 2^32-1 means "very long"); garbage is undefined. */
function parseSeconds(v: string): number | undefined {
  const n = parseDecimalString(v.trim(), 0xffffffff, 40, true);
  return n < 0 ? undefined : n;
}

/**
 * Flow-Timer (RFC 5626 §4.4.1, §6): how long we let a flow stay silent. A stream connection is
 * dropped after 15 idle minutes (stream.ts), so 120 s of keep-alives keep it with room to
 * spare; over UDP nothing of ours times out, but home NATs forget a mapping after 30 s or so.
 */
export const FLOW_TIMER_STREAM = 120;
export const FLOW_TIMER_UDP = 30;

/** An RFC 5626 flow asked for by one Contact: +sip.instance and a reg-id of 1..2^31-1. */
function flowOf(params: string): { instance: string; regId: number } | undefined {
  const instance = getParam(params, '+sip.instance');
  const reg = getParam(params, 'reg-id');
  if (instance === undefined || instance === '' || reg === undefined) return undefined;
  const regId = parseDecimalString(reg.trim(), 0x7fffffff, 10, false);
  return regId > 0 ? { instance, regId } : undefined;
}

export class Registrar {
  private readonly userAgents = new StringPool();

  constructor(
    private readonly location: LocationService,
    private readonly auth: Authenticator,
    private readonly config: () => RegistrarConfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** via: the request's top Via (the dispatcher has read it; read again when not given). */
  register(req: SipMessage, source: Endpoint, via: Via | undefined = topVia(req)): Reply {
    const cfg = this.config();
    const to = parseNameAddr(req.header('to') ?? '');
    const toUri = to && parseUri(to.uri);
    if (!toUri || (toUri.scheme !== 'sip' && toUri.scheme !== 'sips')) return { status: 400, reason: 'Bad To Header', headers: [] };
    const auth = this.auth.authenticate(req, 'registrar', source.address);
    if (!auth.ok) return { status: auth.status, reason: auth.reason, headers: auth.headers };
    const device = auth.device;
    // A device registers its own AOR only (Kamailio: auth_check with To-user check).
    if (unescapeUser(toUri.user) !== device.username || toUri.host !== cfg.domain.toLowerCase()) {
      return { status: 403, reason: 'Forbidden (AOR does not match credentials)', headers: [] };
    }
    const callId = req.header('call-id') ?? '';
    const cseq = parseCSeq(req.header('cseq'))?.seq ?? 0;
    let headerExpires: number | undefined;
    const eh = req.header('expires');
    if (eh !== undefined) {
      headerExpires = parseSeconds(eh);
      if (headerExpires === undefined) return { status: 400, reason: 'Bad Expires', headers: [] };
    }
    const contacts = req.values('contact');
    if (contacts.length === 1 && contacts[0] === '*') {
      // §10.3 step 6: "*" only with Expires: 0.
      if (headerExpires !== 0) return { status: 400, reason: 'Contact * requires Expires: 0', headers: [] };
      this.location.removeAll(device.username);
      return this.ok([]);
    }
    // RFC 5626 §6: outbound applies when the device says it supports it; a reg-id without
    // +sip.instance, or without that option tag, is registered as plain RFC 3261.
    const outbound = req.values('supported').some((v) => v.trim().toLowerCase() === 'outbound');
    const changes: { uri: string; parsed: SipUri; expires: number; q: number | undefined; flow: { instance: string; regId: number } | undefined }[] = [];
    let flows = 0;
    for (const c of contacts) {
      if (c === '*') return { status: 400, reason: 'Contact * mixed with contacts', headers: [] };
      const na = parseNameAddr(c);
      const u = na && parseUri(na.uri);
      if (!na || !u) return { status: 400, reason: 'Bad Contact', headers: [] };
      const exp = requestedExpires(na.params, headerExpires, cfg.defaultExpires);
      if (exp === undefined) return { status: 400, reason: 'Bad Contact expires', headers: [] };
      if (exp > 0 && exp < cfg.minExpires) {
        return { status: 423, reason: 'Interval Too Brief', headers: [`Min-Expires: ${cfg.minExpires}`] };
      }
      const q = getParam(na.params, 'q');
      const flow = outbound ? flowOf(na.params) : undefined;
      if (flow !== undefined) flows++;
      changes.push({ uri: na.uri, parsed: u, expires: Math.min(exp, cfg.maxExpires), q: q === undefined ? undefined : Number(q) || undefined, flow });
    }
    // §6: a REGISTER binds one flow at a time.
    if (flows > 1) return { status: 400, reason: 'Multiple Contacts with reg-id', headers: [] };
    const existing = this.location.lookup(device.username);
    let retransmission = changes.length > 0;
    for (const ch of changes) {
      const old = existing.find((b) => b.contact === ch.uri);
      // §10.3 step 7: an older CSeq for the same Call-ID is out of order.
      if (old && old.callId === callId && cseq < old.cseq) {
        return { status: 500, reason: 'Out of order REGISTER', headers: ['Retry-After: 1'] };
      }
      if (!(old && old.callId === callId && cseq === old.cseq)) retransmission = false;
    }
    // The same CSeq again is a retransmission: REGISTER is answered statelessly, so it is
    // answered again with the bindings as they are, without extending them a second time.
    if (retransmission) return this.ok(existing, flows > 0 ? source : undefined);
    const now = this.now();
    // Bindings live for minutes: their strings must not pin the request's header strings.
    const ownCallId = ownString(callId);
    const userAgent = this.userAgents.intern((req.header('user-agent') ?? '').slice(0, 200));
    // One copy of the source for all of this REGISTER's bindings: the caller's object is the
    // transport's, and its address may be a slice of a longer string.
    const from: Endpoint = { transport: source.transport, address: ownString(source.address), port: source.port, local: source.local };
    for (const ch of changes) {
      if (ch.flow !== undefined) {
        // The same device instance and reg-id from a new address, connection or Call-ID (a
        // reboot, a network change): the old flow is dead, its binding must not ring.
        for (const old of existing) {
          if (old.instance === ch.flow.instance && old.regId === ch.flow.regId && old.contact !== ch.uri) {
            this.location.remove(device.username, old.contact, 'replaced');
          }
        }
      }
      if (ch.expires === 0) {
        this.location.remove(device.username, ch.uri);
        continue;
      }
      const b: Binding = {
        username: device.username,
        extension: device.extension,
        contact: ownString(ch.uri),
        expiresAt: now + ch.expires * 1000,
        callId: ownCallId,
        cseq,
        source: from,
        // Over an outbound flow, requests go back over that flow (RFC 5626 §5.3), never to the Contact.
        dest: via === undefined || ch.flow !== undefined ? from : contactDest(ch.parsed, via, from),
        userAgent,
      };
      if (ch.q !== undefined) b.qValue = ch.q;
      if (ch.flow !== undefined) {
        b.instance = ownString(ch.flow.instance);
        b.regId = ch.flow.regId;
      }
      this.location.upsert(b);
    }
    return this.ok(this.location.lookup(device.username), flows > 0 ? source : undefined);
  }

  /** flow: the source of a REGISTER that used outbound (§6: Require: outbound and Flow-Timer then). */
  private ok(bindings: Binding[], flow?: Endpoint): Reply {
    const now = this.now();
    const headers = bindings.map((b) => {
      const contact = `Contact: <${b.contact}>;expires=${Math.max(0, Math.round((b.expiresAt - now) / 1000))}`;
      return b.instance === undefined ? contact : `${contact};+sip.instance="${b.instance}";reg-id=${b.regId}`;
    });
    if (flow !== undefined) {
      headers.push('Require: outbound', `Flow-Timer: ${flow.transport === 'udp' ? FLOW_TIMER_UDP : FLOW_TIMER_STREAM}`);
    }
    headers.push(`Date: ${new Date(now).toUTCString()}`);
    return { status: 200, reason: 'OK', headers };
  }
}
