/**
 * The stored form of each kind: what a journal line's "v" and a snapshot entry hold, and how it
 * is read back. The format is the one written before the stores had events (old data
 * directories load): a binding's source is the string "udp:127.0.0.2:5062" (its dest, written
 * only when it is not the source, has the same form), and every writer here writes exactly what
 * JSON.stringify wrote for the same record.
 */
import type { ActiveCall, CallParty, DialogEnd } from '../calls/active-call.js';
import type { ExtensionSetting } from '../directory/setting.js';
import { activeCallJson, jsonString } from '../lib/json-text.js';
import type { Binding } from '../location/binding.js';
import { formatEndpoint, parseEndpoint } from '../transport/endpoint.js';
import { transportByName } from '../transport/names.js';
import type { Codec, Codecs, StoredKinds } from './types.js';

/** A number as JSON.stringify writes it (non-finite numbers become null). */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export const bindingCodec: Codec<Binding> = {
  // Every REGISTER writes one: a template, not JSON.stringify (see lib/json-text.ts).
  json: (b) =>
    `{"username":${jsonString(b.username)},"extension":${jsonString(b.extension)},"contact":${jsonString(b.contact)},` +
    `"expiresAt":${jsonNumber(b.expiresAt)},"callId":${jsonString(b.callId)},"cseq":${jsonNumber(b.cseq)},` +
    `"source":${jsonString(formatEndpoint(b.source))},"transport":${jsonString(b.source.transport)},"userAgent":${jsonString(b.userAgent)}` +
    (b.dest === b.source ? '' : `,"dest":${jsonString(formatEndpoint(b.dest))}`) +
    (b.qValue === undefined ? '' : `,"qValue":${jsonNumber(b.qValue)}`) +
    // RFC 5626: kept so that after a restart the device's next REGISTER of the same flow still
    // replaces this binding (a reboot behind a restarted proxy leaves no ghost contact).
    (b.instance === undefined ? '' : `,"instance":${jsonString(b.instance)}`) +
    (b.regId === undefined ? '}' : `,"regId":${jsonNumber(b.regId)}}`),
  decode: (r) => {
    if (!isObject(r) || typeof r.username !== 'string' || typeof r.contact !== 'string' || typeof r.expiresAt !== 'number') return undefined;
    const source = typeof r.source === 'string' ? parseEndpoint(r.source) : undefined;
    if (source === undefined) return undefined;
    const b: Binding = {
      username: r.username,
      extension: str(r.extension),
      contact: r.contact,
      expiresAt: r.expiresAt,
      callId: str(r.callId),
      cseq: typeof r.cseq === 'number' ? r.cseq : 0,
      source,
      // Stored only when it is not the source; a binding stored before it existed was reached at its source.
      dest: (typeof r.dest === 'string' ? parseEndpoint(r.dest) : undefined) ?? source,
      userAgent: str(r.userAgent),
    };
    if (typeof r.qValue === 'number') b.qValue = r.qValue;
    // Absent in records written before they were stored: such a binding is plain RFC 3261.
    if (typeof r.instance === 'string' && r.instance !== '') b.instance = r.instance;
    const regId = r.regId;
    if (typeof regId === 'number' && Number.isInteger(regId) && regId > 0 && regId <= 0x7fffffff) b.regId = regId;
    return b;
  },
};

function decodeParty(p: unknown): CallParty | undefined {
  if (!isObject(p) || typeof p.extension !== 'string') return undefined;
  return { extension: p.extension, device: str(p.device), direction: p.direction === 'outbound' ? 'outbound' : 'inbound' };
}

/**
 * A call's ends as lib/json-text.ts writes them: {from, to, caller: {uri, flow, routes, cseq},
 * callee: {...}}, the dialog's From and To once. Calls stored by the first version with ends
 * have {caller, callee}, each with its own from/to and dest {transport, address, port}.
 */
function decodeEnds(r: Raw): { caller: DialogEnd; callee: DialogEnd } | null {
  if (typeof r.from === 'string' && typeof r.to === 'string') {
    // The callee's end as if from the caller; the caller's the other way round.
    const caller = decodeEnd(r.caller, r.to, r.from);
    const callee = decodeEnd(r.callee, r.from, r.to);
    return caller && callee ? { caller, callee } : null;
  }
  const caller = decodeEnd(r.caller);
  const callee = decodeEnd(r.callee);
  return caller && callee ? { caller, callee } : null;
}

function decodeEnd(e: unknown, from?: string, to?: string): DialogEnd | undefined {
  if (!isObject(e) || typeof e.uri !== 'string') return undefined;
  const dest = typeof e.flow === 'string' ? parseEndpoint(e.flow) : destOf(e.dest);
  if (dest === undefined) return undefined;
  return { uri: e.uri, dest, from: from ?? str(e.from), to: to ?? str(e.to), routes: str(e.routes), cseq: typeof e.cseq === 'number' ? e.cseq : -1 };
}

function destOf(d: unknown): DialogEnd['dest'] | undefined {
  if (!isObject(d)) return undefined;
  const t = typeof d.transport === 'string' ? transportByName(d.transport) : undefined;
  const { address, port } = d;
  return t && typeof address === 'string' && typeof port === 'number' ? { transport: t.name, address, port } : undefined;
}

export const callCodec: Codec<ActiveCall> = {
  json: activeCallJson,
  decode: (r) => {
    if (!isObject(r) || typeof r.id !== 'string' || typeof r.callId !== 'string' || !Array.isArray(r.parties)) return undefined;
    if (typeof r.startedAt !== 'number' || typeof r.expiresAt !== 'number') return undefined;
    const parties: CallParty[] = [];
    for (const raw of r.parties) {
      const p = decodeParty(raw);
      if (p === undefined) return undefined;
      parties.push(p);
    }
    // A call stored by an older version has no ends: it is tracked, not probed.
    const ends = isObject(r.ends) ? decodeEnds(r.ends) : null;
    const sessionExpires = typeof r.sessionExpires === 'number' ? r.sessionExpires : 0;
    return { id: r.id, callId: r.callId, fromTag: str(r.fromTag), toTag: str(r.toTag), parties, startedAt: r.startedAt, expiresAt: r.expiresAt, ends, sessionExpires };
  },
};

export const settingCodec: Codec<ExtensionSetting> = {
  json: (s) => `{"busyOnBusy":${s.busyOnBusy}}`,
  decode: (r) => (isObject(r) && typeof r.busyOnBusy === 'boolean' ? { busyOnBusy: r.busyOnBusy } : undefined),
};

export const storedCodecs: Codecs<StoredKinds> = { binding: bindingCodec, call: callCodec, setting: settingCodec };
