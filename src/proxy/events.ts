/**
 * What the proxy announces to the rooms that listen (the call tracker, the call log, metrics),
 * as Kamailio's tm announces transactions to the dialog module. The proxy calls nobody's
 * write methods: app.ts subscribes the listeners.
 */
import type { ConfirmedDialog } from '../calls/active-call.js';
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
  /** A branch's first 2xx to an INVITE confirmed a dialog in which parties of ours take part. */
  dialogConfirmed(d: ConfirmedDialog): void;
  /**
   * An in-dialog request passed through, in either direction (fromTag is the sender's): a BYE
   * ends the call, a re-INVITE or UPDATE refreshes its session timer, and every one raises the
   * CSeq the proxy's own requests to the other end must not exceed. sessionExpires: the
   * Session-Expires of a re-INVITE or UPDATE in seconds, 0 when none.
   */
  inDialogRequest(callId: string, fromTag: string, toTag: string, method: string, cseq: number, sessionExpires: number): void;
  /** An INVITE got its final answer (or was refused before any branch). */
  callOutcome(o: CallOutcome): void;
}
