/**
 * What `sipbob check` warns about: listeners whose Via and Record-Route would name an address
 * the phones cannot reach. Pure: the configured listeners and this host's addresses in, one
 * warning per config key out.
 */
import { addressScope, isWildcard } from './addresses.js';
import { wildcardAddresses, type InterfaceAddress } from './interfaces.js';
import type { ListenSpec } from './transport.js';

export interface ReachabilityInput {
  domain: string;
  advertise?: string;
  listen: readonly ListenSpec[];
}

export interface ReachabilityWarning {
  /** The config key: "listen[0]", "advertise". */
  key: string;
  message: string;
}

const LOCAL_ONLY = 'only this host can reach it';

export function reachabilityWarnings(c: ReachabilityInput, interfaces: readonly InterfaceAddress[]): ReachabilityWarning[] {
  const out: ReachabilityWarning[] = [];
  const domainLocal = isLocalName(c.domain);
  if (c.advertise) {
    const scope = addressScope(c.advertise);
    if ((scope === 'loopback' && !domainLocal) || scope === 'unspecified') {
      out.push({ key: 'advertise', message: `${c.advertise} is ${scope === 'loopback' ? 'a loopback' : 'the unspecified'} address: Via and Record-Route name it, and ${LOCAL_ONLY}` });
    }
    // With advertise set, Via and Record-Route name it whatever the listeners bind.
    return out;
  }
  c.listen.forEach((l, i) => {
    const key = `listen[${i}]`;
    if (isWildcard(l.host)) {
      const all = wildcardAddresses(l.host as '0.0.0.0' | '::', interfaces);
      const reachable = all.filter((a) => addressScope(a.address) !== 'loopback');
      if (reachable.length === 0) {
        if (!domainLocal) {
          out.push({ key, message: `${l.url} without advertise: this host has only loopback addresses (${list(all)}), so ${LOCAL_ONLY}; set advertise to the address phones reach` });
        }
      } else if (!reachable.some((a) => addressScope(a.address) === 'public')) {
        out.push({
          key,
          message: `${l.url} without advertise: this host's addresses are private (${list(reachable)}); Via and Record-Route name them, so phones outside those networks cannot reach the proxy (behind NAT, set advertise to the public address)`,
        });
      }
      return;
    }
    const scope = addressScope(l.host);
    if (scope === undefined) return; // a host name: resolved when binding
    if (scope === 'loopback') {
      if (!domainLocal) out.push({ key, message: `${l.url} is a loopback address: ${LOCAL_ONLY}, yet the domain is ${c.domain} (listen on 0.0.0.0 or an interface address)` });
      return;
    }
    if (!interfaces.some((a) => a.address === l.host)) {
      out.push({ key, message: `${l.host} is not an address of this host: binding it will fail here (behind 1:1 NAT, listen on the private address and set advertise to the public one)` });
      return;
    }
    if (scope === 'private' || scope === 'link-local') {
      out.push({ key, message: `${l.url} is a ${scope} address and advertise is not set: phones outside its network cannot reach the proxy` });
    }
  });
  return out;
}

/** A domain only this host resolves to: localhost, *.localhost or a loopback address. */
function isLocalName(domain: string): boolean {
  const d = domain.toLowerCase();
  return d === 'localhost' || d.endsWith('.localhost') || addressScope(d) === 'loopback';
}

function list(addrs: readonly InterfaceAddress[]): string {
  return addrs.map((a) => a.address).join(', ') || 'none';
}
