/**
 * What persistence keeps, typed per kind. Memory is always the source for reads; a Persistence
 * only records the stores' changes so they survive a restart (design.md: "State is always read
 * from memory; stores persist and share it"). persist-stores.ts turns the stores' events into
 * puts and dels.
 */
import type { ActiveCall } from '../calls/active-call.js';
import type { ExtensionSetting } from '../directory/setting.js';
import type { Binding } from '../location/binding.js';

/** Each kind and its value; the names are the journal's "k" field. */
export interface StoredKinds {
  /** key: username + "\n" + contact */
  binding: Binding;
  /** key: ActiveCall.id */
  call: ActiveCall;
  /** key: extension number */
  setting: ExtensionSetting;
}

export type Kind = keyof StoredKinds;

/** What load() found, kind by kind (every kind present, maybe empty). */
export type Loaded = { [K in Kind]: Map<string, StoredKinds[K]> };

/**
 * Records changes so that they survive a restart. put/del must be cheap and never block on I/O
 * per call: implementations batch writes. A value is immutable once put: the store may keep a
 * reference to it (to write a snapshot later), so a change is a new object and a new put.
 */
export interface Persistence {
  /** Once, before any put/del. The values returned are the ones persistence keeps (adopt them, do not copy). */
  load(): Promise<Loaded>;
  put<K extends Kind>(kind: K, key: string, value: StoredKinds[K]): void;
  /**
   * value: what was removed, when the caller has it. Several instances share one key per device
   * and contact, so the Redis state tells the others whose binding went (Binding.owner).
   */
  del<K extends Kind>(kind: K, key: string, value?: StoredKinds[K]): void;
  /** Flush what is pending and release resources. */
  close(): Promise<void>;
}

/** How one kind is written to and read back from storage. */
export interface Codec<T> {
  /** The value as JSON text (journal and snapshot). */
  json(value: T): string;
  /** A record read back from storage, or undefined when it is not a well-formed one. */
  decode(raw: unknown): T | undefined;
}

export type Codecs<T> = { readonly [K in keyof T]: Codec<T[K]> };
