/**
 * The target set of a request (RFC 3261 §16.5): every contact of every registered device of
 * the extension, or the first trunk for a number that is not an extension.
 */
import type { ExtensionConfig, TrunkConfig } from '../config/types.js';
import type { LocationService } from '../location/location.js';
import { hostPort } from '../sip/uri.js';
import type { Endpoint } from '../transport/endpoint.js';
import type { BranchTarget } from './fork.js';
import { ownerRoute } from './next-hop.js';

/**
 * The devices of ext, except the calling device itself, each where its binding says
 * (location/nat.ts); a binding another instance owns through that instance, which relays the
 * branch to the device (see ownerRoute).
 */
export function extensionTargets(ext: ExtensionConfig, callerDevice: string | undefined, location: Pick<LocationService, 'lookup'>): BranchTarget[] {
  const targets: BranchTarget[] = [];
  for (const dev of ext.devices) {
    if (dev.username === callerDevice) continue;
    for (const b of location.lookup(dev.username)) {
      const path = b.path;
      if (path === undefined) targets.push({ uri: b.contact, dest: b.dest, device: b.username, extension: ext.number });
      else targets.push({ uri: b.contact, dest: path, device: b.username, extension: ext.number, route: ownerRoute(path) });
    }
  }
  return targets;
}

/** A call out through a trunk: the dialled user part at the trunk's address. */
export function trunkTarget(rawUser: string, trunk: TrunkConfig): BranchTarget {
  const port = trunk.port ?? 5060;
  return { uri: `sip:${rawUser}@${hostPort(trunk.host, port)}`, dest: { transport: 'udp', address: trunk.host, port }, device: '', extension: '' };
}

/** The trunk a request came from, by source address (and port when the trunk names one). */
export function trunkOf(source: Endpoint, trunks: readonly TrunkConfig[]): TrunkConfig | undefined {
  for (const t of trunks) if (t.host === source.address && (t.port === undefined || t.port === source.port)) return t;
  return undefined;
}
