/** Worker-thread side of loadConfigIsolated: parse and validate, post the result, exit. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from './load.js';

const { file, env } = workerData as { file: string; env: NodeJS.ProcessEnv };
parentPort?.postMessage(loadConfig(file, env));
