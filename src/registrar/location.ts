/**
 * The location service (RFC 3261 §10.2, Kamailio's usrloc): contacts bound to each device.
 * Reads come from memory; every change is handed to the Persistence.
 */
import type { Binding, Persistence } from '../state/types.js';

/** A device may not flood the table: past this many contacts the oldest binding goes. */
export const MAX_CONTACTS_PER_DEVICE = 10;

export class LocationService {
  private byUser = new Map<string, Binding[]>();
  /** Contact URI → binding, to send in-dialog requests to the address the device registered from. */
  private byContact = new Map<string, Binding>();
  private contactCount = 0;

  constructor(private readonly persistence: Persistence, private readonly now: () => number = Date.now) {}

  static key(b: Pick<Binding, 'username' | 'contact'>): string {
    return `${b.username}\n${b.contact}`;
  }

  /** Bindings from the store; those that expired while we were down are dropped. */
  restore(records: Map<string, unknown> | undefined, knownUser: (u: string) => boolean): void {
    if (!records) return;
    const now = this.now();
    for (const [key, v] of records) {
      const b = v as Binding;
      if (!b || typeof b.username !== 'string' || typeof b.expiresAt !== 'number' || b.expiresAt <= now || !knownUser(b.username)) {
        this.persistence.del('binding', key);
        continue;
      }
      this.insert(b);
    }
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
      this.byContact.delete(list[i]!.contact);
      list[i] = b;
      this.byContact.set(b.contact, b);
    } else {
      if (list && list.length >= MAX_CONTACTS_PER_DEVICE) {
        const oldest = list.reduce((a, x) => (x.expiresAt < a.expiresAt ? x : a));
        this.remove(oldest.username, oldest.contact);
      }
      this.insert(b);
    }
    this.persistence.put('binding', LocationService.key(b), b);
  }

  private insert(b: Binding): void {
    let list = this.byUser.get(b.username);
    if (!list) this.byUser.set(b.username, (list = []));
    list.push(b);
    this.byContact.set(b.contact, b);
    this.contactCount++;
  }

  remove(username: string, contact: string): void {
    const list = this.byUser.get(username);
    if (!list) return;
    const i = list.findIndex((x) => x.contact === contact);
    if (i === -1) return;
    list.splice(i, 1);
    if (list.length === 0) this.byUser.delete(username);
    if (this.byContact.get(contact)?.username === username) this.byContact.delete(contact);
    this.contactCount--;
    this.persistence.del('binding', LocationService.key({ username, contact }));
  }

  removeAll(username: string): void {
    for (const b of [...(this.byUser.get(username) ?? [])]) this.remove(username, b.contact);
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
          this.remove(user, b.contact);
          n++;
        }
      }
    }
    return n;
  }

  registeredDevices(): number {
    return this.byUser.size;
  }

  contacts(): number {
    return this.contactCount;
  }
}
