import { parseUri } from '../sip/uri.js';
import { isLoopbackAddress, isWildcard } from '../transport/addresses.js';
import type { LocalAddress } from '../transport/transport.js';

/**
 * Who this proxy is: the SIP domain, the hosts and ports of its listeners and the advertised
 * address. Recomputed after the listeners are bound and on reload; read by routing (is a
 * Route or Request-URI ours?) and by digest auth (a digest uri naming us is acceptable).
 */
export class Identity {
  private domain = '';
  private hosts = new Set<string>();
  private ports = new Set<number>();
  /**
   * A wildcard listener also answers at loopback addresses no interface lists (127.0.0.5 on
   * Linux, over TCP): a URI naming one of them with our port is ours too.
   */
  private anyLoopback = false;

  refresh(domain: string, advertise: string | undefined, listen: readonly { host: string; port: number }[], locals: readonly LocalAddress[]): void {
    this.domain = domain.toLowerCase();
    const hosts = new Set([this.domain]);
    if (advertise) hosts.add(advertise.toLowerCase());
    const ports = new Set<number>();
    this.anyLoopback = false;
    for (const l of listen) {
      if (isWildcard(l.host)) this.anyLoopback = true;
      hosts.add(l.host.toLowerCase());
      ports.add(l.port);
    }
    for (const l of locals) hosts.add(l.host.toLowerCase());
    this.hosts = hosts;
    this.ports = ports;
  }

  /** host: lower case, as parseUri gives it. */
  isOurHost(host: string): boolean {
    return this.hosts.has(host) || (this.anyLoopback && isLoopbackAddress(host));
  }

  /** A URI that routes to us: our domain, or one of our hosts with one of our ports. */
  isOurUri(uri: string | undefined): boolean {
    const u = uri && parseUri(uri);
    if (!u) return false;
    if (u.host === this.domain) return true;
    return this.isOurHost(u.host) && this.ports.has(u.port || 5060);
  }
}
