/**
 * `http.trustProxy`: which TCP peers are reverse proxies whose X-Forwarded-For is believed.
 * fastify (through @fastify/proxy-addr) walks X-Forwarded-For from the right and takes the
 * first address that is not a trusted proxy as the client (`request.ip`); this module only
 * answers "is this address a trusted proxy?". The list can be replaced on SIGHUP without
 * restarting the server, because fastify is given this object's function, not the list.
 */
import { BlockList, isIP } from 'node:net';
import type { Cidr } from '../config/types.js';

export class ProxyTrust {
  private list: BlockList | undefined;

  constructor(cidrs: readonly Cidr[] = []) {
    this.set(cidrs);
  }

  /** Replaces the trusted networks; an empty list trusts no one (X-Forwarded-For is ignored). */
  set(cidrs: readonly Cidr[]): void {
    if (cidrs.length === 0) {
      this.list = undefined;
      return;
    }
    const list = new BlockList();
    for (const c of cidrs) list.addSubnet(c.address, c.prefix, isIP(c.address) === 6 ? 'ipv6' : 'ipv4');
    this.list = list;
  }

  /**
   * fastify's `trustProxy` function: (address, hop) => trusted. `address` is the TCP peer
   * (hop 0) or an entry of X-Forwarded-For, which anyone may have written: an entry that is
   * not an IP address is never trusted. BlockList matches IPv4 networks against IPv4-mapped
   * IPv6 peers (::ffff:10.0.0.1) too, as a dual-stack listener reports them.
   */
  readonly trusts = (address: string, _hop: number): boolean => {
    const list = this.list;
    if (list === undefined) return false;
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * The address fields of a request's log lines: `ip` is the client (forwarded through a
 * trusted proxy, else the TCP peer), `proxy` the TCP peer when it is not the client.
 */
export function clientFields(req: { ip: string; socket: { remoteAddress?: string | undefined } }): { ip: string; proxy?: string } {
  const peer = req.socket.remoteAddress;
  return peer === undefined || peer === req.ip ? { ip: req.ip } : { ip: req.ip, proxy: peer };
}
