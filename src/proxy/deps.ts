import type { Authenticator } from '../auth/authenticator.js';
import type { CallTracker } from '../calls/tracker.js';
import type { Config } from '../config/types.js';
import type { LocationService } from '../location/location.js';
import type { Registrar } from '../registrar/registrar.js';
import type { Directory } from '../directory/directory.js';
import type { LocalIds } from '../transaction/ids.js';
import type { TransactionLayer } from '../transaction/layer.js';
import type { Endpoint } from '../transport/endpoint.js';
import type { LocalAddress } from '../transport/transport.js';
import type { ProxyEvents } from './events.js';
import type { Identity } from './identity.js';

/** What the proxy core uses: the rooms below it, and the events it announces. */
export interface ProxyDeps {
  config: () => Config;
  layer: TransactionLayer;
  ids: LocalIds;
  identity: Identity;
  /** Our Via/Record-Route address for a message to dest (the listener it leaves from). */
  localFor(dest: Endpoint): LocalAddress;
  /** Stateless sends (REGISTER/OPTIONS answers, ACK for 2xx, late 2xx): counted like every send. */
  send(dest: Endpoint, data: Buffer): void;
  directory: Directory;
  location: LocationService;
  auth: Authenticator;
  registrar: Registrar;
  /** Read only: the Busy-on-Busy decision reads the per-extension call count. */
  calls: Pick<CallTracker, 'activeFor'>;
  events: ProxyEvents;
  /**
   * Several instances: is source another instance of this cluster? Only a peer's request with
   * our Route is relayed to a contact registered here (relay-route.ts). Always false without
   * a cluster.
   */
  peers: Peers;
}

export interface Peers {
  isPeer(source: Endpoint): boolean;
}

/** Not clustered: nobody is a peer. */
export const NO_PEERS: Peers = { isPeer: () => false };
