/** One party of a confirmed dialog that belongs to an extension. */
export interface CallParty {
  extension: string;
  device: string; // device username, or "" when the device is unknown (e.g. trunk leg)
  direction: 'inbound' | 'outbound'; // inbound: the extension is callee
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
