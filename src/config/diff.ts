/**
 * What a config reload (SIGHUP) changes: compared by extension number and device username, so
 * the caller can drop the bindings of removed devices and keep everything else.
 */
import type { Config, ExtensionConfig } from './types.js';

export interface ExtensionDiff {
  /** Numbers only in the new config, in its order. */
  added: string[];
  /** Numbers only in the old config, in its order. */
  removed: string[];
  /** Numbers in both whose settings or devices differ, in the new config's order. */
  changed: string[];
}

export function diffExtensions(oldCfg: Config, newCfg: Config): ExtensionDiff {
  const before = new Map(oldCfg.extensions.map((e) => [e.number, e]));
  const after = new Set(newCfg.extensions.map((e) => e.number));
  const added: string[] = [];
  const changed: string[] = [];
  for (const ext of newCfg.extensions) {
    const old = before.get(ext.number);
    if (!old) added.push(ext.number);
    else if (!sameExtension(old, ext)) changed.push(ext.number);
  }
  const removed = oldCfg.extensions.map((e) => e.number).filter((n) => !after.has(n));
  return { added, removed, changed };
}

/** Usernames of the old config's devices that no longer exist anywhere in the new one. */
export function removedDevices(oldCfg: Config, newCfg: Config): string[] {
  const kept = new Set(newCfg.extensions.flatMap((e) => e.devices.map((d) => d.username)));
  return oldCfg.extensions.flatMap((e) => e.devices.map((d) => d.username)).filter((u) => !kept.has(u));
}

/** Equal settings and the same devices with the same passwords; device order does not matter. */
function sameExtension(a: ExtensionConfig, b: ExtensionConfig): boolean {
  if (
    a.name !== b.name ||
    a.busyOnBusy !== b.busyOnBusy ||
    a.ringTimeout !== b.ringTimeout ||
    a.declineEndsCall !== b.declineEndsCall ||
    a.devices.length !== b.devices.length
  ) {
    return false;
  }
  const passwords = new Map(a.devices.map((d) => [d.username, d.password]));
  return b.devices.every((d) => passwords.get(d.username) === d.password);
}
