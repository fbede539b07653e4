import type { Endpoint } from '../transport/endpoint.js';

/**
 * One contact bound to a device (RFC 3261 §10.3). Immutable once stored: a refresh is a new
 * object, so a subscriber may keep a reference to it (persistence does, to write snapshots).
 */
export interface Binding {
  username: string; // device (digest) username
  extension: string; // number of the extension the device belongs to
  contact: string; // Contact URI as registered, e.g. sip:anna@127.0.0.2:5062;transport=udp
  expiresAt: number; // ms since epoch
  callId: string;
  cseq: number;
  /** Where the REGISTER came from (in memory with the listener it reached: Endpoint.local). */
  source: Endpoint;
  /**
   * Where requests to this contact go (nat.ts): source itself when NAT shows or over a stream
   * (the device's connection), else the Contact's own address.
   */
  dest: Endpoint;
  userAgent: string;
  qValue?: number;
  /**
   * RFC 5626 outbound: the Contact's +sip.instance (without its quotes) and reg-id.
   * Together they name one flow of one device: a new REGISTER for the same pair replaces this
   * binding whatever its Contact and Call-ID.
   */
  instance?: string;
  regId?: number;
  /**
   * Several instances (storage.redis): set on a binding another instance owns, which holds the
   * device's NAT binding or connection. `path` is that instance's cluster.address, through which
   * every request to the contact goes (as a Path header would route it, RFC 3327); source and
   * dest are as the owner saw them and are never used here. Absent on our own bindings.
   */
  owner?: string;
  path?: Endpoint;
}

/** Why a binding left the location service. */
export type RemoveReason =
  | 'expired' // its time ran out (the sweep)
  | 'unregistered' // the device asked: Expires 0 or Contact: *
  | 'replaced' // the device had too many contacts: its oldest made room for a new one
  | 'device-removed' // the device is no longer in the config (SIGHUP)
  | 'admin' // the operator removed them through the API
  | 'connection-closed'; // registered over a stream connection (TCP, TLS, WS) that closed

/** What changed in the location service. */
export type LocationEvent =
  | { type: 'added'; binding: Binding }
  | { type: 'refreshed'; binding: Binding; previous: Binding }
  | { type: 'removed'; binding: Binding; reason: RemoveReason };
