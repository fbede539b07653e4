/**
 * State kept by the core and read by the HTTP layer. Memory is always the source for reads;
 * a Persistence only records changes so they survive a restart (design.md: "State is always
 * read from memory; stores persist and share it").
 */

/** One contact bound to a device (RFC 3261 §10.3). */
export interface Binding {
  username: string; // device (digest) username
  extension: string; // number of the extension the device belongs to
  contact: string; // Contact URI as registered, e.g. sip:anna@127.0.0.2:5062;transport=udp
  expiresAt: number; // ms since epoch
  callId: string;
  cseq: number;
  /** Where the REGISTER came from; requests to this contact are sent here (NAT-friendly, like Kamailio's fix_nated_contact). */
  source: string; // "udp:127.0.0.2:5062" or "tcp:127.0.0.2:40312"
  transport: 'udp' | 'tcp';
  userAgent: string;
  qValue?: number;
}

/** One party of a confirmed dialog that belongs to an extension. */
export interface CallParty {
  extension: string;
  device: string; // device username, or "" when the device is unknown (e.g. trunk leg)
  direction: 'inbound' | 'outbound'; // inbound: the extension is callee
}

/** A confirmed dialog (2xx seen, no BYE yet). */
export interface ActiveCall {
  id: string; // Call-ID;from-tag;to-tag
  callId: string;
  fromTag: string;
  toTag: string;
  parties: CallParty[];
  startedAt: number; // ms since epoch
  expiresAt: number; // startedAt + maxCallDuration
}

/**
 * Records changes so that they survive a restart. Kinds: "binding" (key username + "\n" +
 * contact), "call" (key ActiveCall.id), "setting" (key extension number, value
 * {busyOnBusy:boolean}). put/del must be cheap and never block on I/O per call: implementations
 * batch writes. A value is immutable once put: the store may keep a reference to it (to write a
 * snapshot later), so a change is a new object and a new put.
 */
export interface Persistence {
  load(): Promise<Map<string, Map<string, unknown>>>;
  /** json: the value as JSON text when the caller has it written already (json-text.ts). */
  put(kind: string, key: string, value: unknown, json?: string): void;
  del(kind: string, key: string): void;
  /** Flush what is pending and release resources. */
  close(): Promise<void>;
}
