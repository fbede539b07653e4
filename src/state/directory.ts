/**
 * The extensions and devices of the config, with the settings changed through the API laid
 * over them. Settings changed through the API win over the YAML until changed again, and
 * survive restarts and SIGHUP reloads (issue 3).
 */
import type { Config, DeviceConfig, ExtensionConfig } from '../config/types.js';
import type { Persistence } from './types.js';

export interface Device extends DeviceConfig {
  extension: string;
}

export class Directory {
  private extensions = new Map<string, ExtensionConfig>();
  private devices = new Map<string, Device>();
  private overrides = new Map<string, { busyOnBusy: boolean }>();

  constructor(config: Config, private readonly persistence: Persistence) {
    this.load(config);
  }

  /** Replace the YAML part (SIGHUP). Overrides stay. */
  load(config: Config): void {
    this.extensions = new Map(config.extensions.map((e) => [e.number, e]));
    this.devices = new Map();
    // A literal, not a spread: one hidden class for all devices.
    for (const e of config.extensions) {
      for (const d of e.devices) this.devices.set(d.username, { username: d.username, password: d.password, extension: e.number });
    }
  }

  restore(settings: Map<string, unknown> | undefined): void {
    if (!settings) return;
    for (const [number, v] of settings) {
      if (v && typeof v === 'object' && typeof (v as { busyOnBusy?: unknown }).busyOnBusy === 'boolean') {
        this.overrides.set(number, { busyOnBusy: (v as { busyOnBusy: boolean }).busyOnBusy });
      }
    }
  }

  extension(number: string): ExtensionConfig | undefined {
    return this.extensions.get(number);
  }

  allExtensions(): IterableIterator<ExtensionConfig> {
    return this.extensions.values();
  }

  device(username: string): Device | undefined {
    return this.devices.get(username);
  }

  busyOnBusy(number: string): boolean {
    return this.overrides.get(number)?.busyOnBusy ?? this.extensions.get(number)?.busyOnBusy ?? false;
  }

  setBusyOnBusy(number: string, value: boolean): boolean {
    if (!this.extensions.has(number)) return false;
    this.overrides.set(number, { busyOnBusy: value });
    this.persistence.put('setting', number, { busyOnBusy: value });
    return true;
  }
}
