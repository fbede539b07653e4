/**
 * The location service (RFC 3261 §10.2, Kamailio's usrloc): contacts bound to each device.
 * Memory only; every change is announced on `events` for whoever keeps, shares or shows it.
 */
import { Listeners } from '../lib/events.js';
import { endpointKey, type Endpoint } from '../transport/endpoint.js';
import { TRANSPORTS } from '../transport/names.js';
import type { Binding, LocationEvent, RemoveReason } from './binding.js';

/** A device may not flood the table: past this many contacts the oldest binding goes. */
export const MAX_CONTACTS_PER_DEVICE = 10;

export class LocationService {
  /** Bindings added, refreshed and removed, in the order they happen. */
  readonly events = new Listeners<LocationEvent>();
  private byUser = new Map<string, Binding[]>();
  /** Contact URI → binding, to send in-dialog requests to the address the device registered from. */
  private byContact = new Map<string, Binding>();
  private contactCount = 0;
  /**
   * endpointKey of a stream connection → the bindings registered over it (their source), so
   * that a closed connection takes exactly its bindings along without a scan of the table.
   */
  private byFlow = new Map<string, Set<Binding>>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * A binding kept from before a restart. Announces nothing (it is not a change); false, and
   * not taken, when it expired while we were down.
   */
  restore(b: Binding): boolean {
    if (b.expiresAt <= this.now()) return false;
    const list = this.byUser.get(b.username);
    if (list && list.some((x) => x.contact === b.contact)) return false;
    this.insert(b);
    return true;
  }

  /**
   * Another instance's binding as shared state announced it (several instances): added or
   * replaced without an event, since it is not a change made here and must not be written back.
   */
  mirror(b: Binding): void {
    const list = this.byUser.get(b.username);
    const i = list ? list.findIndex((x) => x.contact === b.contact) : -1;
    if (list && i !== -1) this.replaceAt(list, i, b);
    else this.insert(b);
  }

  /** Puts b where list[i] was (the same contact); returns what it replaced. */
  private replaceAt(list: Binding[], i: number, b: Binding): Binding {
    const previous = list[i]!;
    this.byContact.delete(previous.contact);
    this.unindexFlow(previous);
    list[i] = b;
    this.byContact.set(b.contact, b);
    this.indexFlow(b);
    return previous;
  }

  /**
   * Another instance removed a binding, or it died: gone here without an event (see mirror).
   * owner: only when that instance owns it. The key (device and contact) may have moved to
   * another instance, or to this one, since the owner's binding went: that binding stays.
   */
  forget(username: string, contact: string, owner?: string): void {
    const list = this.byUser.get(username);
    const i = list ? list.findIndex((x) => x.contact === contact) : -1;
    if (!list || i === -1) return;
    if (owner !== undefined && list[i]!.owner !== owner) return;
    this.drop(list, i);
  }

  /** Every binding an instance owns: it died, or shared state is being reloaded. */
  forgetOwner(owner: string): number {
    let n = 0;
    for (const list of this.byUser.values()) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i]!.owner === owner) {
          this.drop(list, i);
          n++;
        }
      }
    }
    return n;
  }

  /** Unexpired bindings of a device. */
  lookup(username: string): Binding[] {
    const list = this.byUser.get(username);
    if (!list) return [];
    const now = this.now();
    return list.filter((b) => b.expiresAt > now);
  }

  byContactUri(uri: string): Binding | undefined {
    const b = this.byContact.get(uri);
    return b && b.expiresAt > this.now() ? b : undefined;
  }

  /** Add or refresh one binding (RFC 3261 §10.3 step 7). */
  upsert(b: Binding): void {
    const list = this.byUser.get(b.username);
    const i = list ? list.findIndex((x) => x.contact === b.contact) : -1;
    if (list && i !== -1) {
      const previous = this.replaceAt(list, i, b);
      this.events.emit({ type: 'refreshed', binding: b, previous });
      return;
    }
    if (list && list.length >= MAX_CONTACTS_PER_DEVICE) {
      const oldest = list.reduce((a, x) => (x.expiresAt < a.expiresAt ? x : a));
      this.remove(oldest.username, oldest.contact, 'replaced');
    }
    this.insert(b);
    this.events.emit({ type: 'added', binding: b });
  }

  private insert(b: Binding): void {
    let list = this.byUser.get(b.username);
    if (!list) this.byUser.set(b.username, (list = []));
    list.push(b);
    this.byContact.set(b.contact, b);
    this.indexFlow(b);
    this.contactCount++;
  }

  private indexFlow(b: Binding): void {
    // Another instance's connection closes there, not here.
    if (!TRANSPORTS[b.source.transport].reliable || b.owner !== undefined) return;
    const key = endpointKey(b.source);
    let set = this.byFlow.get(key);
    if (!set) this.byFlow.set(key, (set = new Set()));
    set.add(b);
  }

  private unindexFlow(b: Binding): void {
    if (!TRANSPORTS[b.source.transport].reliable || b.owner !== undefined) return;
    const key = endpointKey(b.source);
    const set = this.byFlow.get(key);
    if (!set) return;
    set.delete(b);
    if (set.size === 0) this.byFlow.delete(key);
  }

  /**
   * A stream connection closed (remote: its far end): the bindings registered over it go,
   * since the device can only be reached over that connection (behind NAT it accepts none).
   * Returns how many went.
   */
  removeFlow(remote: Endpoint): number {
    const set = this.byFlow.get(endpointKey(remote));
    if (!set) return 0;
    const gone = [...set];
    for (const b of gone) this.remove(b.username, b.contact, 'connection-closed');
    return gone.length;
  }

  remove(username: string, contact: string, reason: RemoveReason = 'unregistered'): void {
    const list = this.byUser.get(username);
    if (!list) return;
    const i = list.findIndex((x) => x.contact === contact);
    if (i === -1) return;
    const b = this.drop(list, i);
    this.events.emit({ type: 'removed', binding: b, reason });
  }

  private drop(list: Binding[], i: number): Binding {
    const b = list[i]!;
    list.splice(i, 1);
    this.unindexFlow(b);
    if (list.length === 0) this.byUser.delete(b.username);
    if (this.byContact.get(b.contact)?.username === b.username) this.byContact.delete(b.contact);
    this.contactCount--;
    return b;
  }

  /** Every binding of a device: Contact: * (RFC 3261 §10.3 step 6), or the device left the config. */
  removeAll(username: string, reason: RemoveReason = 'unregistered'): void {
    for (const b of [...(this.byUser.get(username) ?? [])]) this.remove(username, b.contact, reason);
  }

  /** Drop expired bindings; returns how many. Run periodically. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    // Runs every second over every binding: no copies. Backwards, so that remove()'s splice
    // only moves entries already looked at; deleting the user's entry from byUser while
    // iterating it is allowed for a Map.
    for (const [user, list] of this.byUser) {
      for (let i = list.length - 1; i >= 0; i--) {
        const b = list[i]!;
        if (b.expiresAt <= now) {
          // Another instance's binding expires there too, announced by its owner.
          if (b.owner !== undefined) this.drop(list, i);
          else this.remove(user, b.contact, 'expired');
          n++;
        }
      }
    }
    return n;
  }

  /** Every binding, expired ones not yet swept included (for periodic work over the table). */
  *all(): IterableIterator<Binding> {
    for (const list of this.byUser.values()) yield* list;
  }

  registeredDevices(): number {
    return this.byUser.size;
  }

  contacts(): number {
    return this.contactCount;
  }
}
