/**
 * The addresses of this host that a wildcard listener (0.0.0.0, ::) stands for, as Kamailio
 * lists them for `listen=0.0.0.0`: one socket per address lets each UDP socket know the
 * address it was reached at (node has no IP_PKTINFO to tell a wildcard socket's destination).
 * Read from os.networkInterfaces() once, when the listeners open.
 */
import type os from 'node:os';

export interface InterfaceAddress {
  address: string;
  family: 4 | 6;
  /** Prefix length of the interface's network (192.0.2.2/24: 24). */
  prefix: number;
  /** The loopback interface. */
  internal: boolean;
}

/**
 * Every address of every interface, once, in the order the system lists them, except IPv6
 * link-local ones (fe80::/10): binding them needs a zone (%eth0) and no phone reaches a
 * proxy that way.
 */
export function interfaceAddresses(ifaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  const seen = new Set<string>();
  for (const list of Object.values(ifaces)) {
    for (const i of list ?? []) {
      // The same address on two interfaces (an anycast or VRRP setup) is bound once.
      if (seen.has(i.address)) continue;
      seen.add(i.address);
      const family = i.family === 'IPv6' || (i.family as unknown) === 6 ? 6 : 4;
      if (family === 6 && (i.scopeid ?? 0) !== 0) continue;
      if (family === 6 && /^fe[89ab]/i.test(i.address)) continue;
      const slash = i.cidr?.lastIndexOf('/') ?? -1;
      const prefix = slash === -1 ? (family === 4 ? 32 : 128) : Number(i.cidr!.slice(slash + 1));
      out.push({ address: i.address, family, prefix, internal: i.internal });
    }
  }
  return out;
}

/**
 * The addresses a wildcard listener host stands for: 0.0.0.0 every IPv4 address; :: every
 * address of both families (node's "::" sockets are dual-stack, so a tcp://[::] listener
 * accepts IPv4 too, and the UDP one must serve the same addresses).
 */
export function wildcardAddresses(host: '0.0.0.0' | '::', all: readonly InterfaceAddress[]): InterfaceAddress[] {
  return host === '::' ? [...all] : all.filter((a) => a.family === 4);
}
