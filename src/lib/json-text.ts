/**
 * JSON text of the fixed-shape records written on every call: the "call outcome" and "call
 * ended" log lines (their fields, for log/info-line.ts) and the journal record of a call.
 *
 * Why not JSON.stringify: these run on every call, and V8's generic object path costs far more
 * than a template for a shape known in advance (bench/README.md). A string value is copied as
 * it is when it needs no escape (nearly always: Call-IDs, tags, device names), else
 * JSON.stringify escapes it. The output is JSON.stringify's, byte for byte, but for a call's
 * ends, which have a smaller stored form (test/lib/json-text.test.ts).
 */

/** The fields of a call party these writers read (calls/ ActiveCall's parties fit it). */
export interface PartyFields {
  extension: string;
  device: string;
  direction: string;
}

/** The fields of a confirmed call these writers read (calls/ ActiveCall fits it). */
export interface CallFields {
  id: string;
  callId: string;
  fromTag: string;
  toTag: string;
  parties: readonly PartyFields[];
  startedAt: number;
  expiresAt: number;
  ends: { caller: EndFields; callee: EndFields } | null;
  sessionExpires: number;
}

/** One end of a call (calls/ DialogEnd fits it). */
export interface EndFields {
  uri: string;
  dest: { transport: string; address: string; port: number };
  from: string;
  to: string;
  routes: string;
  cseq: number;
}

/**
 * The stored form of a call's ends, smaller than the objects: the dialog's From and To once
 * (the callee's end is written as if from the caller, the caller's the other way round, so
 * each end's pair is the other's swapped), and each end's flow as "udp:127.0.0.1:5060", as a
 * binding's source is stored. state/records.ts reads it back.
 */
function endsJson(caller: EndFields, callee: EndFields): string {
  return `{"from":${jsonString(callee.from)},"to":${jsonString(callee.to)},"caller":${endJson(caller)},"callee":${endJson(callee)}}`;
}

function endJson(e: EndFields): string {
  const d = e.dest;
  // transport/endpoint.ts's text form ("tcp:::1:5060" for IPv6: the port follows the last
  // colon). Transport names and IP literals need no escaping.
  return `{"uri":${jsonString(e.uri)},"flow":"${d.transport}:${d.address}:${d.port}","routes":${e.routes === '' ? '""' : jsonString(e.routes)},"cseq":${e.cseq}}`;
}

/**
 * Characters JSON.stringify escapes: controls, '"', '\\', and surrogates (lone ones are escaped
 * by a well-formed JSON.stringify, ES2019; any surrogate goes the exact way). One character
 * class without quantifiers: a linear scan in native code.
 */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const CONTROL_OR_SURROGATE = /[\u0000-\u001f\ud800-\udfff]/;
const QUOTE_OR_BACKSLASH = /["\\]/g;

/** A string as JSON.stringify writes it. */
export function jsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  // A quoted display name ("Anna" <sip:...>) in the From and To a call keeps is the usual
  // case: a backslash before each quote is all it needs, without JSON.stringify's generic path.
  return CONTROL_OR_SURROGATE.test(s) ? JSON.stringify(s) : `"${s.replace(QUOTE_OR_BACKSLASH, '\\$&')}"`;
}

export function partiesJson(parties: readonly PartyFields[]): string {
  let s = '[';
  for (let i = 0; i < parties.length; i++) {
    const p = parties[i]!;
    if (i > 0) s += ',';
    s += `{"extension":${jsonString(p.extension)},"device":${jsonString(p.device)},"direction":${jsonString(p.direction)}}`;
  }
  return s + ']';
}

/**
 * An ActiveCall as JSON.stringify(call) writes it (the journal record's value), except for its
 * ends, which are written in their stored form (endsJson).
 */
export function activeCallJson(c: CallFields): string {
  return (
    `{"id":${jsonString(c.id)},"callId":${jsonString(c.callId)},"fromTag":${jsonString(c.fromTag)},` +
    `"toTag":${jsonString(c.toTag)},"parties":${partiesJson(c.parties)},"startedAt":${c.startedAt},"expiresAt":${c.expiresAt},` +
    `"ends":${c.ends === null ? 'null' : endsJson(c.ends.caller, c.ends.callee)},"sessionExpires":${c.sessionExpires}}`
  );
}

/** The branches of a "call outcome" line: [{"device":..,"status":..,"cancelled":..}]. */
export function branchesJson(branches: readonly { device: string; status: number; cancelled: boolean }[]): string {
  let s = '[';
  for (let i = 0; i < branches.length; i++) {
    const b = branches[i]!;
    if (i > 0) s += ',';
    s += `{"device":${jsonString(b.device)},"status":${b.status},"cancelled":${b.cancelled}}`;
  }
  return s + ']';
}

export interface CallOutcomeFields {
  callId: string;
  extension: string;
  /** The calling device, or the trunk's name. */
  from: string;
  outcome: string;
  status: number;
  branches: readonly { device: string; status: number; cancelled: boolean }[];
}

/** The fields of the "call outcome" line, as InfoLine.write takes them. */
export function callOutcomeMembers(f: CallOutcomeFields): string {
  return (
    `"callId":${jsonString(f.callId)},"extension":${jsonString(f.extension)},"from":${jsonString(f.from)},` +
    `"outcome":${jsonString(f.outcome)},"status":${f.status},"branches":${branchesJson(f.branches)},"msg":"call outcome"`
  );
}

/** The fields of the "call ended" line. */
export function callEndedMembers(call: Pick<CallFields, 'callId' | 'parties'>, why: string): string {
  return `"callId":${jsonString(call.callId)},"parties":${partiesJson(call.parties)},"why":${jsonString(why)},"msg":"call ended"`;
}
