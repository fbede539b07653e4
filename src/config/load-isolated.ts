/**
 * Loading a config in a worker thread. The YAML library keeps a full node tree with source
 * ranges (for error lines): about 700 MB of heap for a config with 100,000 devices. In a
 * worker that heap goes away with the thread; in the main thread V8 would keep the pages for
 * the life of the proxy. Only the plain Config crosses over.
 */
import { Worker } from 'node:worker_threads';
import type { ConfigResult } from './load.js';

export function loadConfigIsolated(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load-thread.js', import.meta.url), { workerData: { file, env: { ...env } } });
    worker.once('message', (r: ConfigResult) => {
      resolve(r);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`config loader exited with code ${code}`));
    });
  });
}
