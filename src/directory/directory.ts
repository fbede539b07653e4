/**
 * The extensions and devices of the config, with the settings changed through the API laid
 * over them. Settings changed through the API win over the YAML until changed again, and
 * survive restarts and SIGHUP reloads (issue 3): the directory announces each change on
 * `events`, and persistence keeps it.
 */
import type { Config, DeviceConfig, ExtensionConfig } from '../config/types.js';
import { Listeners } from '../lib/events.js';
import type { DirectoryEvent, ExtensionSetting } from './setting.js';

export interface Device extends DeviceConfig {
  extension: string;
}

export class Directory {
  /** Settings changed through the API. */
  readonly events = new Listeners<DirectoryEvent>();
  private extensions = new Map<string, ExtensionConfig>();
  private devices = new Map<string, Device>();
  private overrides = new Map<string, ExtensionSetting>();

  constructor(config: Config) {
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

  /** Every setting changed through the API (what persistence keeps). */
  settings(): IterableIterator<[string, ExtensionSetting]> {
    return this.overrides.entries();
  }

  /** A setting kept from before a restart. Announces nothing: it is not a change. */
  restore(number: string, setting: ExtensionSetting): void {
    this.overrides.set(number, setting);
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
    const setting: ExtensionSetting = { busyOnBusy: value };
    this.overrides.set(number, setting);
    this.events.emit({ type: 'setting-changed', extension: number, setting });
    return true;
  }
}
