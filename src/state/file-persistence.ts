/**
 * The embedded default persistence: bindings, calls and settings in a journal plus snapshot in
 * one directory (file/file-store.ts), in the stored form of records.ts.
 *
 *   state.jsonl    one record per line: {"k":kind,"key":key,"v":value} or {"k":kind,"key":key,"d":1}
 *   snapshot.json  {"version":1,"state":[[kind,[[key,value],...]],...]}, written atomically
 *
 * Durability: anything the proxy answered in an earlier event-loop turn is on disk (in the page
 * cache) when the process dies; see file/journal.ts.
 */
import { FileStore, type FileStoreOptions, type FileStoreStats, type PersistenceLogger } from './file/file-store.js';
import { storedCodecs } from './records.js';
import type { Persistence, StoredKinds } from './types.js';

export type { PersistenceLogger };
export type FilePersistenceOptions = FileStoreOptions;
export type FilePersistenceStats = FileStoreStats;

export class FilePersistence extends FileStore<StoredKinds> implements Persistence {
  constructor(dir: string, opts: FilePersistenceOptions = {}) {
    super(dir, storedCodecs, opts);
  }
}
