#!/usr/bin/env node
// `npm ci` (prepare) and `npm start` (prestart) build dist/ when the devDependencies are there:
// a development checkout keeps running what its sources say. Without them (`npm ci --omit=dev`,
// `npm prune --omit=dev`) there is no compiler, and the proxy runs the dist/ built before;
// then only its absence is an error, with what to do about it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
let compiler = true;
try {
  createRequire(new URL('../package.json', import.meta.url)).resolve('typescript');
} catch {
  compiler = false;
}
if (compiler) {
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
if (!existsSync(new URL('../dist/src/cli.js', import.meta.url))) {
  console.error(
    'sipbob: dist/ is not built and the devDependencies (TypeScript) are not installed.\n' +
      'Build with the devDependencies first (npm ci && npm run build), then drop them (npm prune --omit=dev).',
  );
  process.exit(1);
}
