import type { Persistence } from './types.js';

/** Keeps nothing: state lives only as long as the process (tests, or `storage` disabled). */
export class MemoryPersistence implements Persistence {
  async load(): Promise<Map<string, Map<string, unknown>>> {
    return new Map();
  }

  put(_kind: string, _key: string, _value: unknown, _json?: string): void {}

  del(_kind: string, _key: string): void {}

  async close(): Promise<void> {}
}
