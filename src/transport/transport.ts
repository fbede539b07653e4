/**
 * What every transport is (one class per transport: udp.ts, tcp.ts, tls.ts, ws.ts; stream.ts
 * is what TCP and TLS share),
 * and what the registry (transports.ts) hands it.
 */
import type { Logger } from 'pino';
import type { Endpoint } from './endpoint.js';
import type { TransportName } from './names.js';

/** Host and port this proxy puts in Via and Record-Route for one listener. */
export interface LocalAddress {
  transport: TransportName;
  host: string;
  port: number;
}

/** One listener to open; config's ListenConfig has this shape (transport must not import config). */
export interface ListenSpec {
  transport: TransportName;
  /** IP literal to bind, without brackets. */
  host: string;
  /** 0: any free port (tests); local.port then becomes the bound one. */
  port: number;
  /** As written in the config, for logs. */
  url: string;
}

/**
 * One address we listen at, with the address we advertise for it. A wildcard spec (0.0.0.0,
 * ::) becomes one Listener per interface address (transports.ts): UDP binds each of them, TCP
 * binds the wildcard once and names each accepted connection by its local address.
 */
export interface Listener {
  spec: ListenSpec;
  /** The IP literal bound: spec.host, or one interface address of a wildcard spec. */
  bind: string;
  local: LocalAddress;
  /** Prefix length of the network bind sits on (choosing a listener by destination). */
  prefix?: number;
  /** The host's default route leaves from bind: the listener for destinations off every network. */
  preferred?: boolean;
  /** local.host is config's advertise, not bind. */
  advertised?: boolean;
}

/** Every datagram or framed stream message, with where it came from and the listener it reached. */
export type MessageHandler = (data: Buffer, source: Endpoint, local: LocalAddress) => void;

/**
 * Asked before anything is parsed (implemented by security/): a source past its limits is
 * dropped unanswered. address: the remote IP as the socket reports it.
 */
export interface SourceGate {
  /** A datagram or framed stream message; false: drop it (on a stream, close the connection). */
  admit(address: string, data: Buffer): boolean;
  /** A stream connection was accepted; false: close it at once. */
  admitConnection(address: string): boolean;
}

/** Lets everything through (tests, tools). */
export const OPEN_GATE: SourceGate = { admit: () => true, admitConnection: () => true };

/** What the registry gives each transport. */
export interface TransportContext {
  log: Logger;
  onMessage: MessageHandler;
  /** Absent: everything is admitted. */
  gate?: SourceGate;
  /**
   * A stream connection (TCP, TLS, WS...) closed; remote: its far end, as the source of its
   * messages was named. Whatever was bound to it (a registration over it) is gone with it.
   */
  onConnectionClosed?: (remote: Endpoint) => void;
}

export interface Transport {
  readonly name: TransportName;
  /** Via sent-protocol token: 'UDP', 'TCP' (later 'TLS', 'WS', 'WSS'). */
  readonly viaToken: string;
  /** Reliable: responses go back on the request's connection, no retransmission timers. */
  readonly reliable: boolean;
  /** Every listener's address (wildcards expanded), for recognising URIs that name us. */
  readonly locals: readonly LocalAddress[];
  /**
   * Our Via/Record-Route address for a message to dest: the listener it will leave from
   * (dest.local when set, a stream's connection, else chosen by dest's address: local-choice.ts).
   */
  localFor(dest: Endpoint): LocalAddress;
  /** Opens every listener of this transport; rejects when one cannot bind. */
  start(): Promise<void>;
  /**
   * Fire and forget: SIP recovers from loss by retransmission; errors are logged, never
   * thrown. onError, when given, hears that this message could not be sent. A stream
   * transport sends on the connection it keeps for dest (the one the peer opened, found by
   * endpointKey(dest): phones behind NAT are reachable only that way), or opens one.
   */
  send(dest: Endpoint, data: Buffer, onError?: () => void): void;
  /** Closes listeners and connections. */
  close(): Promise<void>;
}
