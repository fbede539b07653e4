/**
 * Loading a config in a worker thread. The YAML library keeps a full node tree with source
 * ranges (for error lines): about 700 MB of heap for a config with 100,000 devices. In a
 * worker that heap goes away with the thread; in the main thread V8 would keep the pages for
 * the life of the proxy. Only the plain Config crosses over.
 */
import { Worker } from 'node:worker_threads';
import type { ConfigResult } from './load.js';
import type { Config, ExtensionConfig } from './types.js';

export function loadConfigIsolated(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load-thread.js', import.meta.url), { workerData: { file, env: { ...env } } });
    worker.once('message', (r: ConfigResult) => {
      resolve(r.config ? { ...r, config: reshape(r.config) } : r);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`config loader exited with code ${code}`));
    });
  });
}

/**
 * The structured clone gives every extension and device object its own hidden class (a map
 * and descriptor array per object: megabytes at 100,000 devices, bench/README.md). Rebuilt as
 * literals of one shape, they share one.
 */
function reshape(c: Config): Config {
  return {
    ...c,
    extensions: c.extensions.map((e): ExtensionConfig => {
      const devices = e.devices.map((d) => ({ username: d.username, password: d.password }));
      const { number, name, busyOnBusy, declineEndsCall, ringTimeout } = e;
      return ringTimeout === undefined
        ? { number, name, busyOnBusy, declineEndsCall, devices }
        : { number, name, busyOnBusy, declineEndsCall, devices, ringTimeout };
    }),
  };
}
