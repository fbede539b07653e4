import type { Kind, Loaded, Persistence, StoredKinds } from './types.js';

/** Keeps nothing: state lives only as long as the process (tests, or `storage` disabled). */
export class MemoryPersistence implements Persistence {
  async load(): Promise<Loaded> {
    return { binding: new Map(), call: new Map(), setting: new Map() };
  }

  put<K extends Kind>(_kind: K, _key: string, _value: StoredKinds[K]): void {}

  del(_kind: Kind, _key: string): void {}

  async close(): Promise<void> {}
}
