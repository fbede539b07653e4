/**
 * Which of our listeners a message to a destination leaves from (and so which address our Via
 * and Record-Route name), when we listen at several addresses of one transport. Pure: the
 * listeners' addresses and networks are known when they open.
 *
 * Order: the destination is one of our own addresses (a device on this host): that one; a
 * loopback destination: our loopback address; a destination on the network of one of our
 * addresses: that one; else the listener the host's default route leaves from (`preferred`),
 * else the first that is not loopback, else the first. This is what the kernel's route lookup
 * would pick in the usual cases (Kamailio's mhomed asks the kernel per destination instead).
 */
import { addressGroups, addressScope, inNetwork, isWildcard } from './addresses.js';

export interface Candidate {
  /** The address bound: an interface address, a configured one, or a wildcard. */
  bind: string;
  /** Prefix length of the network bind sits on; undefined when unknown. */
  prefix?: number;
  /** The default route leaves from this address. */
  preferred?: boolean;
}

interface Entry<L> {
  l: L;
  groups: number[] | undefined;
  loopback: boolean;
}

export class LocalChoice<L extends Candidate> {
  private readonly v4: Entry<L>[] = [];
  private readonly v6: Entry<L>[] = [];
  private readonly default4: L | undefined;
  private readonly default6: L | undefined;

  constructor(listeners: readonly L[]) {
    for (const l of listeners) {
      const e: Entry<L> = { l, groups: isWildcard(l.bind) ? undefined : addressGroups(l.bind), loopback: addressScope(l.bind) === 'loopback' };
      // A "::" socket is dual-stack: it can send to IPv4 destinations too.
      if (l.bind === '::') {
        this.v6.push(e);
        this.v4.push(e);
      } else if (l.bind.indexOf(':') !== -1) this.v6.push(e);
      else this.v4.push(e);
    }
    this.default4 = fallback(this.v4);
    this.default6 = fallback(this.v6);
  }

  /** The listener for a destination IP literal; undefined when none of its family exists. */
  choose(address: string): L | undefined {
    const v6 = address.indexOf(':') !== -1;
    const list = v6 ? this.v6 : this.v4;
    if (list.length <= 1) return list[0]?.l;
    const g = addressGroups(address);
    if (g === undefined) return v6 ? this.default6 : this.default4;
    for (const e of list) if (e.groups !== undefined && sameGroups(e.groups, g)) return e.l;
    if (addressScope(address) === 'loopback') {
      for (const e of list) if (e.loopback) return e.l;
    }
    for (const e of list) if (e.groups !== undefined && e.l.prefix !== undefined && e.l.prefix > 0 && inNetwork(g, e.groups, e.l.prefix)) return e.l;
    return v6 ? this.default6 : this.default4;
  }
}

function fallback<L extends Candidate>(list: Entry<L>[]): L | undefined {
  return (list.find((e) => e.l.preferred) ?? list.find((e) => !e.loopback) ?? list[0])?.l;
}

function sameGroups(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
