/**
 * Issue 12, item 9 (a real deployment), what can be checked without a Docker engine:
 * - `npm start` runs the proxy with the production dependencies only: a copy of the package
 *   (package.json, lockfile, scripts/, config/, the built dist/) gets the node_modules that
 *   `npm ci --omit=dev` installs (every lockfile entry not marked dev, copied from this
 *   checkout's node_modules: no registry needed), no TypeScript and no tap; `npm start`
 *   answers /healthz, the portal and the API and stops on SIGTERM;
 * - in such a copy `npm run prepare` (what `npm ci --omit=dev` runs) leaves the built dist/
 *   alone, and without a dist/ says what to do and fails;
 * - the files of deploy/ and the Dockerfile agree with the repository and with each other:
 *   deploy/sipbob.yaml passes `sipbob check`, the systemd unit passes `systemd-analyze verify`
 *   where systemd is installed, every file the Dockerfile copies exists, and the ports, paths
 *   and scheme of the compose file, the Prometheus job and the HEALTHCHECK are the configs'.
 *
 * - deploy/compose-cluster.yml (issue 14): two instances and one Redis, host networking; each
 *   instance's config passes `sipbob check`, names the Redis service, its own instance name,
 *   address and ports, the same lease (calls.keepalive).
 *
 * Ports: SIP portBlock(14) + 5, HTTP 19197.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { ADMIN_TOKEN, CLI, portBlock, ROOT } from './harness.js';
import { baseConfig, request, start } from './http-kit.js';

const SIP_PORT = portBlock(14).sip + 5;
const HTTP_PORT = 19197;

/**
 * The environment of a fresh shell: none of the npm_* variables of the `npm test` running us,
 * and no node_modules/.bin on PATH (npm and npx put this checkout's there, tsc among them).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_')) env[k] = v;
  const PATH = (process.env['PATH'] ?? '').split(path.delimiter).filter((d) => !d.includes(`node_modules${path.sep}.bin`));
  return { ...env, PATH: PATH.join(path.delimiter), NODE_ENV: 'production' };
}

/** A copy of the package as a production machine has it after `npm ci --omit=dev` on a built checkout. */
function productionCopy(): { dir: string; packages: string[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-prod-'));
  for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(ROOT, f), path.join(dir, f));
  for (const d of ['scripts', 'config', 'dist']) cpSync(path.join(ROOT, d), path.join(dir, d), { recursive: true });
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
  const modules = realpathSync(path.join(ROOT, 'node_modules'));
  const packages: string[] = [];
  for (const [key, meta] of Object.entries(lock.packages)) {
    if (key === '' || meta.dev === true) continue;
    const from = path.join(modules, key.slice('node_modules/'.length));
    if (!existsSync(from)) {
      if (meta.optional === true) continue; // an optional dependency for another platform
      throw new Error(`${key} is in the lockfile but not installed: run npm ci`);
    }
    // A package's own node_modules holds entries of their own in the lockfile, copied (or not) on their turn.
    cpSync(from, path.join(dir, key), { recursive: true, filter: (src) => src === from || !src.startsWith(path.join(from, 'node_modules')) });
    packages.push(key);
  }
  return { dir, packages };
}

t.test('npm start with the production dependencies only', async (t) => {
  const { dir, packages } = productionCopy();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.ok(packages.includes('node_modules/fastify'), `${packages.length} production packages copied`);
  for (const dev of ['typescript', 'tap', '@types/node', 'playwright-core', 'sip']) t.notOk(existsSync(path.join(dir, 'node_modules', dev)), `no ${dev}`);
  for (let up = path.dirname(dir); ; up = path.dirname(up)) {
    t.notOk(existsSync(path.join(up, 'node_modules')), `no node_modules in ${up} that could lend a package`);
    if (up === path.dirname(up)) break;
  }

  const prepare = spawnSync('npm', ['run', 'prepare'], { cwd: dir, env: cleanEnv(), encoding: 'utf8', timeout: 60_000 });
  t.equal(prepare.status, 0, 'npm run prepare (as npm ci --omit=dev runs it): exit 0 with the built dist/', { details: prepare.stderr });
  t.notMatch(prepare.stdout + prepare.stderr, /tsc/, '...and does not try to compile');

  const config = baseConfig({ sipPort: SIP_PORT, httpPort: HTTP_PORT, password: 'deploy-pw-1' });
  const proxy = await start(config, {
    readyTimeoutMs: 20_000,
    launch: (configFile) => ({ command: 'npm', args: ['start', '--', '--config', configFile], cwd: dir, env: cleanEnv() }),
  });
  t.teardown(() => proxy.stop());
  t.pass('npm start: "sipbob started"');
  t.equal((await request({ port: HTTP_PORT, path: '/healthz' })).status, 200, '/healthz 200');
  const portal = await request({ port: HTTP_PORT, path: '/portal.js' });
  t.equal(portal.status, 200, 'the built portal is served');
  const api = await request({ port: HTTP_PORT, path: '/api/extensions', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  t.equal(api.status, 200, 'the API answers');
  await proxy.stop();
  t.equal(await proxy.exited, 0, 'SIGTERM to npm: the proxy stops and npm exits 0');
  const after = await request({ port: HTTP_PORT, path: '/healthz' }).then(
    () => 'still answering',
    (e: Error) => e.message,
  );
  t.match(after, /ECONNREFUSED/, 'nothing left listening');

  rmSync(path.join(dir, 'dist'), { recursive: true });
  const unbuilt = spawnSync('npm', ['start'], { cwd: dir, env: cleanEnv(), encoding: 'utf8', timeout: 60_000 });
  t.not(unbuilt.status, 0, 'without dist/ and without TypeScript, npm start fails');
  t.match(unbuilt.stderr, /dist\/ is not built and the devDependencies \(TypeScript\) are not installed/, '...and says why');
  t.match(unbuilt.stderr, /npm ci && npm run build/, '...and what to do');
});

t.test('deploy/ and the Dockerfile agree with the repository and each other', async (t) => {
  const deployConfig = path.join(ROOT, 'deploy', 'sipbob.yaml');
  const check = spawnSync(process.execPath, [CLI, 'check', '--config', deployConfig], { encoding: 'utf8', timeout: 20_000 });
  t.equal(check.status, 0, 'deploy/sipbob.yaml passes sipbob check', { details: check.stderr });
  const example = parse(readFileSync(deployConfig, 'utf8'));
  const [, httpPort] = /:(\d+)$/.exec(example.http.listen)!;
  const scheme = example.http.https ? 'https' : 'http';

  const analyze = spawnSync('systemd-analyze', ['verify', path.join(ROOT, 'deploy', 'sipbob.service')], { encoding: 'utf8', timeout: 20_000 });
  if (analyze.error) t.skip('systemd-analyze not installed', () => {});
  else t.equal(analyze.status, 0, 'systemd-analyze verify deploy/sipbob.service', { details: analyze.stderr });
  const unit = readFileSync(path.join(ROOT, 'deploy', 'sipbob.service'), 'utf8');
  t.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m, 'the unit reloads with SIGHUP');
  t.match(unit, /^ExecStart=\/usr\/bin\/node \/opt\/sipbob\/dist\/src\/cli\.js --config \/etc\/sipbob\/sipbob\.yaml$/m, 'node runs the built cli (npm would not pass SIGHUP on)');
  t.match(unit, /^StateDirectory=sipbob$/m, 'the unit creates /var/lib/sipbob');
  t.equal(example.storage.path, '/var/lib/sipbob', "...which is the example config's storage.path");

  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
    const sources = m[1]!.trim().split(/\s+/).slice(0, -1);
    for (const s of sources) t.ok(existsSync(path.join(ROOT, s)), `Dockerfile COPY ${s}: exists`);
  }
  t.match(dockerfile, /^COPY --from=build \/app\/dist \.\/dist$/m, 'the image takes dist/ from the build stage');
  t.match(dockerfile, /^RUN npm ci --omit=dev .*--ignore-scripts/m, '...and installs the production dependencies only');
  t.ok(existsSync(path.join(ROOT, 'dist', 'src', 'cli.js')) && /^ENTRYPOINT \["node", "dist\/src\/cli\.js"\]$/m.test(dockerfile), 'ENTRYPOINT runs dist/src/cli.js, which the build makes');
  t.match(dockerfile, /^HEALTHCHECK .*CMD \["node", "\/app\/deploy\/healthcheck\.mjs"\]$/m, 'HEALTHCHECK runs deploy/healthcheck.mjs');
  t.match(dockerfile, /^VOLUME \["\/var\/lib\/sipbob"\]$/m, 'a volume for storage.path');
  const embedded = parse(readFileSync(path.join(ROOT, 'config', 'sipbob.yaml'), 'utf8'));
  t.match(dockerfile, new RegExp(`SIPBOB_HEALTH_URL=http://${embedded.http.listen}/healthz`), "the probe's default URL is the embedded config's http.listen");

  const compose = parse(readFileSync(path.join(ROOT, 'deploy', 'docker-compose.yml'), 'utf8'));
  const svc = compose.services.sipbob;
  t.equal(svc.network_mode, 'host', 'compose: host networking');
  t.ok(svc.volumes.includes(`sipbob-data:${example.storage.path}`), 'compose: the volume at storage.path');
  t.same(svc.command, ['--config', '/etc/sipbob/sipbob.yaml'], 'compose: the config from /etc/sipbob');
  t.equal(svc.environment.SIPBOB_HEALTH_URL, `${scheme}://127.0.0.1:${httpPort}/healthz`, "compose: the probe dials the example config's port and scheme");

  const prom = parse(readFileSync(path.join(ROOT, 'deploy', 'prometheus.yml'), 'utf8'));
  const job = prom.scrape_configs[0];
  t.equal(job.metrics_path, '/metrics');
  t.equal(job.scheme, scheme, "prometheus: the example config's scheme");
  t.equal(job.authorization.type, 'Bearer', 'prometheus: the admin token as a Bearer token');
  t.ok(job.static_configs[0].targets[0].endsWith(`:${httpPort}`), "prometheus: the example config's port");
});

t.test('deploy/compose-cluster.yml: two instances and one Redis agree with their configs', async (t) => {
  const compose = parse(readFileSync(path.join(ROOT, 'deploy', 'compose-cluster.yml'), 'utf8'));
  const redis = compose.services.redis;
  t.equal(redis.network_mode, 'host', 'redis: host networking');
  const redisPort = Number(redis.command[redis.command.indexOf('--port') + 1]);
  const redisBind = redis.command[redis.command.indexOf('--bind') + 1];
  const seen: Array<{ instance: string; address: string; sip: string; http: string; keepalive: unknown; domain: string; nonceSecret: unknown }> = [];
  for (const name of ['a', 'b']) {
    const file = path.join(ROOT, 'deploy', `sipbob-${name}.yaml`);
    const check = spawnSync(process.execPath, [CLI, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    t.equal(check.status, 0, `deploy/sipbob-${name}.yaml passes sipbob check`, { details: check.stderr });
    const config = parse(readFileSync(file, 'utf8'));
    const svc = compose.services[`sipbob-${name}`];
    t.ok(svc, `compose: service sipbob-${name}`);
    t.equal(svc.network_mode, 'host', `sipbob-${name}: host networking`);
    t.same(svc.command, ['--config', `/etc/sipbob/sipbob-${name}.yaml`], `sipbob-${name}: its own config from /etc/sipbob`);
    t.ok(svc.volumes.includes('/etc/sipbob:/etc/sipbob:ro'), `sipbob-${name}: /etc/sipbob mounted read-only`);
    t.ok(svc.depends_on.includes('redis'), `sipbob-${name} starts after redis`);
    const url = new URL(config.storage.redis);
    t.equal(url.protocol, 'redis:', `sipbob-${name}: storage.redis is a redis:// URL`);
    t.equal(Number(url.port), redisPort, `sipbob-${name}: storage.redis names the Redis service's port`);
    t.equal(url.hostname, redisBind, `sipbob-${name}: ...and the address it binds`);
    t.equal(config.storage.path, undefined, `sipbob-${name}: no storage.path beside storage.redis`);
    t.equal(svc.environment.SIPBOB_HEALTH_URL, `${config.http.https ? 'https' : 'http'}://127.0.0.1:${/:(\d+)$/.exec(config.http.listen)![1]}/healthz`, `sipbob-${name}: the probe dials its config's http.listen`);
    seen.push({
      instance: config.cluster.instance,
      address: config.cluster.address,
      sip: config.listen.map((l: string) => /:(\d+)$/.exec(l)![1]).join(','),
      http: config.http.listen,
      keepalive: config.calls?.keepalive,
      domain: config.domain,
      nonceSecret: config.auth?.nonceSecret,
    });
  }
  const [a, b] = seen;
  t.not(a!.instance, b!.instance, 'cluster.instance differs');
  t.not(a!.address, b!.address, 'cluster.address differs');
  t.not(a!.sip, b!.sip, 'on one host with host networking, the SIP ports differ');
  t.not(a!.http, b!.http, '...and the HTTP ports');
  t.equal(a!.keepalive, b!.keepalive, 'the same calls.keepalive (the lease bound) on both');
  t.equal(a!.domain, b!.domain, 'the same domain on both');
  t.equal(a!.nonceSecret, b!.nonceSecret, 'the same auth.nonceSecret on both');
  for (const s of seen) t.match(s.address, new RegExp(`:(${s.sip.split(',').join('|')})$`), `${s.instance}: cluster.address names one of its own SIP ports`);
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  t.match(readme, /^## Several instances \(Redis\)$/m, 'README has the section');
  t.match(readme, /deploy\/compose-cluster\.yml/, '...which names the compose file');
});
