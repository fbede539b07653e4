import type { Endpoint } from '../transport/endpoint.js';
import type { TimerQueue } from './timer-queue.js';

/** What a transaction needs from the layer that owns it. */
export interface TxEnv {
  timers: TimerQueue;
  send(dest: Endpoint, data: Buffer, onError?: () => void): void;
  /** Called once when the transaction reaches Terminated, so the layer can forget it. */
  terminated(key: string, kind: 'server' | 'client'): void;
}
