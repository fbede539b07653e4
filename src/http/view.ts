/**
 * What the HTTP layer may see and change of the running proxy, in the API's own terms (not the
 * stores' types). Implemented in src/app.ts.
 */

export interface RegistrationView {
  contact: string;
  expiresAt: string; // ISO 8601
  source: string;
  transport: string;
  userAgent: string;
  /** Several instances: the instance the device registered through (which reaches it). */
  instance?: string;
}

export interface DeviceView {
  username: string;
  registrations: RegistrationView[];
}

export interface ExtensionView {
  number: string;
  name: string;
  busyOnBusy: boolean;
  activeCalls: number;
  devices: DeviceView[];
}

export interface CallView {
  id: string;
  extension: string;
  direction: 'inbound' | 'outbound';
  device: string;
  state: 'confirmed';
  startedAt: string; // ISO 8601
  /**
   * When each end of the call last proved alive (ISO 8601): its answer to a keepalive probe,
   * or the call's start until the first probe was answered.
   */
  aliveAt: { caller: string; callee: string };
  /** Several instances: the instance that tracks the call (it forked the INVITE and probes the ends). */
  instance?: string;
}

export interface AdminView {
  listExtensions(): ExtensionView[];
  getExtension(number: string): ExtensionView | undefined;
  /** Returns false when the extension does not exist. Persists the setting. */
  setBusyOnBusy(number: string, value: boolean): boolean;
  listCalls(): CallView[];
  /** Ends a call (BYE to both ends, reason "api"). False when no call has that id. */
  endCall(id: string): boolean;
  /** Removes every binding of a device. False when no device has that username. */
  removeRegistrations(username: string): boolean;
  /** The extension number a device belongs to when username/password are right, else undefined. Constant-time compare. */
  deviceLogin(username: string, password: string): string | undefined;
  /** The admin token currently configured (changes on SIGHUP), undefined when none. */
  adminToken(): string | undefined;
  /** True once every SIP listener is bound. */
  ready(): boolean;
  /** Shared state (storage.redis): whether Redis answers; undefined with the embedded store. */
  redis?(): 'up' | 'down';
}
