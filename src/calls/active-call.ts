import type { Endpoint } from '../transport/endpoint.js';

/** One party of a confirmed dialog that belongs to an extension. */
export interface CallParty {
  extension: string;
  device: string; // device username, or "" when the device is unknown (e.g. trunk leg)
  direction: 'inbound' | 'outbound'; // inbound: the extension is callee
}

/**
 * One end of a dialog as the proxy reaches it with a request of its own (the keepalive OPTIONS,
 * a BYE that ends the call), written as if the other end sent it.
 */
export interface DialogEnd {
  /** Its remote target (Contact): the Request-URI. */
  uri: string;
  /** Where the request goes: the flow the call uses (the address its requests came from, or the one the INVITE went to). */
  dest: Endpoint;
  /** From: the other end, with its tag. */
  from: string;
  /** To: this end, with its tag. */
  to: string;
  /** Route header lines towards it (the route set beyond this proxy), each with CRLF; usually none. */
  routes: string;
  /** The highest CSeq seen in a request towards it when the call was confirmed; -1: none yet. */
  cseq: number;
}

/** A confirmed dialog (2xx seen, no BYE yet). Immutable once stored. */
export interface ActiveCall {
  id: string; // Call-ID;from-tag;to-tag
  callId: string;
  fromTag: string;
  toTag: string;
  parties: CallParty[];
  startedAt: number; // ms since epoch
  expiresAt: number; // startedAt + maxCallDuration
  /** How the proxy reaches each end; null for a call restored from an older store. */
  ends: { caller: DialogEnd; callee: DialogEnd } | null;
  /** RFC 4028 Session-Expires negotiated in the 2xx, seconds; 0: no session timer. */
  sessionExpires: number;
  /**
   * Several instances: the instance that tracks this call (it forked the INVITE and probes the
   * ends). Absent on our own calls; another instance's calls only count for Busy on Busy here.
   */
  owner?: string;
}

/** What a 2xx that confirms a dialog tells the tracker. */
export interface ConfirmedDialog {
  callId: string;
  fromTag: string;
  toTag: string;
  parties: CallParty[];
  ends: { caller: DialogEnd; callee: DialogEnd } | null;
  sessionExpires: number;
}

/**
 * Why a call ended: a BYE passed through; an end stopped answering the keepalive probes; its
 * session timer (RFC 4028) ran out without a refresh; the API ended it; calls.maxCallDuration
 * ran out without a BYE.
 */
export const END_REASONS = ['bye', 'keepalive', 'session-timer', 'api', 'expired'] as const;
export type EndReason = (typeof END_REASONS)[number];

/** What changed in the call tracker. */
export type CallEvent = { type: 'confirmed'; call: ActiveCall } | { type: 'ended'; call: ActiveCall; why: EndReason };
