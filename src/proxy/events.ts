/**
 * What the proxy announces to the rooms that listen (the call tracker, the call log, metrics),
 * as Kamailio's tm announces transactions to the dialog module. The proxy calls nobody's
 * write methods: app.ts subscribes the listeners.
 */
import type { CallParty } from '../calls/active-call.js';
import type { BranchReport, CallOutcomeName } from './fork.js';

export interface CallOutcome {
  callId: string;
  /** The dialled extension, or the dialled number when it is none. */
  extension: string;
  /** The calling device, or the trunk's name. */
  from: string;
  outcome: CallOutcomeName;
  status: number;
  branches: readonly BranchReport[];
}

export interface ProxyEvents {
  /** A branch's first 2xx to an INVITE confirmed a dialog in which these parties take part. */
  dialogConfirmed(callId: string, fromTag: string, toTag: string, parties: CallParty[]): void;
  /** A BYE for this dialog passed through (either direction). */
  byeSeen(callId: string, fromTag: string, toTag: string): void;
  /** An INVITE got its final answer (or was refused before any branch). */
  callOutcome(o: CallOutcome): void;
}
