/** What the API may change about an extension; it wins over the YAML until changed again. */
export interface ExtensionSetting {
  busyOnBusy: boolean;
}

/** What changed in the directory. */
export type DirectoryEvent = { type: 'setting-changed'; extension: string; setting: ExtensionSetting };
