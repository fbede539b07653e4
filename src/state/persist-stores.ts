/**
 * Persistence as a subscriber: it hears the stores' change events and records them, and
 * hands what it kept back to the stores at start. The stores know nothing of it.
 */
import type { CallTracker } from '../calls/tracker.js';
import type { Directory } from '../directory/directory.js';
import type { Binding } from '../location/binding.js';
import type { LocationService } from '../location/location.js';
import type { Loaded, Persistence } from './types.js';

export interface Stores {
  location: LocationService;
  calls: CallTracker;
  directory: Directory;
}

/** A binding's key: one per device and contact. */
export function bindingKey(b: Pick<Binding, 'username' | 'contact'>): string {
  return `${b.username}\n${b.contact}`;
}

/** Records every change of the stores from now on; returns a function that stops it. */
export function persistStores(stores: Stores, persistence: Persistence): () => void {
  const offs = [
    stores.location.events.add((e) => {
      if (e.type === 'removed') persistence.del('binding', bindingKey(e.binding), e.binding);
      else persistence.put('binding', bindingKey(e.binding), e.binding);
    }),
    // call.id: owned by the tracker, so the key lives as long as the call without pinning anything.
    stores.calls.events.add((e) => {
      if (e.type === 'confirmed') persistence.put('call', e.call.id, e.call);
      else persistence.del('call', e.call.id);
    }),
    stores.directory.events.add((e) => persistence.put('setting', e.extension, e.setting)),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/**
 * Gives the stores what persistence loaded: settings, then the bindings of devices still in
 * the config, then calls. What a store does not take (expired while we were down, a device
 * that left the config) is deleted from persistence.
 */
export function restoreStores(stores: Stores, loaded: Loaded, persistence: Persistence): void {
  for (const [number, s] of loaded.setting) stores.directory.restore(number, s);
  // Another instance's bindings and calls (several instances) are its own to delete.
  for (const [key, b] of loaded.binding) {
    if ((stores.directory.device(b.username) === undefined || !stores.location.restore(b)) && b.owner === undefined) persistence.del('binding', key);
  }
  for (const [key, c] of loaded.call) {
    if (!stores.calls.restore(c) && c.owner === undefined) persistence.del('call', key);
  }
}
