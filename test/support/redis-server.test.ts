/**
 * test/support/redis-server.ts against Debian's redis-server: start on a loopback port, raw
 * client, pause (commands time out), stop (the port refuses), restart on the same port (empty:
 * nothing is saved), kill -9, close removes the directory, and a server left running by a test
 * process that exits is killed with it. Redis port 26379 (the cluster tests take 26380-26389).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connected, REDIS_SERVER, startRedis } from './redis-server.js';

const PORT = 26379;
const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

if (!existsSync(REDIS_SERVER)) {
  t.fail(`${REDIS_SERVER} is not installed (apt-get install redis-server; .ci/run does)`);
} else {
  t.test('start, client, pause, stop, restart, kill -9, close', async (t) => {
    const redis = await startRedis({ port: PORT });
    t.teardown(() => redis.close());
    t.equal(redis.url, `redis://127.0.0.1:${PORT}/0`);
    t.ok(redis.running(), 'running');
    t.ok(existsSync(redis.dir), 'a throwaway directory');
    const c = await connected(redis.client());
    t.equal(await c.set('sipbob:probe', 'x'), 'OK');
    t.equal(await c.get('sipbob:probe'), 'x');
    t.same(await c.config('GET', 'save'), ['save', ''], 'nothing is saved to disk');
    t.same(await c.config('GET', 'appendonly'), ['appendonly', 'no']);

    redis.pause();
    const started = Date.now();
    const hung = await c.get('sipbob:probe').then(
      () => 'answered',
      (e: Error) => e.message,
    );
    t.match(hung, /timed out/i, 'a paused server does not answer: the command times out');
    t.ok(Date.now() - started < 4000, 'within the client command timeout');
    redis.resume();
    t.equal(await (await connected(c)).get('sipbob:probe'), 'x', 'answers again after resume');

    const pid = redis.pid()!;
    await redis.stop();
    t.notOk(redis.running(), 'stopped');
    t.notOk(alive(pid), 'the process is gone');
    t.notOk(await listening(PORT), 'the port refuses connections');
    const down = await c.get('sipbob:probe').then(
      () => 'answered',
      (e: Error) => e.message,
    );
    t.not(down, 'answered', `a command while stopped fails at once (${down})`);

    await redis.restart();
    t.ok(redis.running(), 'restarted');
    t.not(redis.pid(), pid, 'a new process');
    t.equal(await (await connected(c, 5000)).get('sipbob:probe'), null, 'the same client reconnects; the restarted server is empty');

    await c.set('sipbob:kept', 'y');
    await redis.save();
    await redis.stop();
    await redis.restart();
    t.equal(await (await connected(c, 5000)).get('sipbob:kept'), 'y', 'after save(), a restart loads the snapshot');
    rmSync(path.join(redis.dir, 'dump.rdb'), { force: true });

    await redis.kill9();
    t.notOk(await listening(PORT), 'kill9: the port refuses connections');
    await redis.restart();
    t.ok(await listening(PORT), 'restart after kill9');

    const dir = redis.dir;
    await redis.close();
    t.notOk(existsSync(dir), 'close removes the directory');
    t.notOk(await listening(PORT), 'close stops the server');
  });

  t.test('a port already taken: start fails with the output', async (t) => {
    const first = await startRedis({ port: PORT });
    t.teardown(() => first.close());
    await t.rejects(startRedis({ port: PORT, readyTimeoutMs: 3000 }), /exited at start|not ready|does not answer/);
  });

  t.test('a server is killed when the test process that started it exits', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sipbob-redis-exit-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    // .mts: the temp dir has no package.json saying "type": "module".
    const script = path.join(dir, 'leave-it-running.mts');
    writeFileSync(
      script,
      `import { startRedis } from ${JSON.stringify(path.join(HERE, 'redis-server.ts'))};\n` +
        `const r = await startRedis({ port: ${PORT} });\n` +
        `console.log('pid ' + r.pid());\n` +
        // Exit without close(): the exit hook must kill the server.
        `process.exit(0);\n`,
    );
    // The same loader flags as this test process, so the child can import TypeScript.
    const child = spawn(process.execPath, [...process.execArgv, script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    t.equal(code, 0, 'the child started redis and exited', { details: out });
    const pid = Number(/pid (\d+)/.exec(out)?.[1]);
    if (!t.ok(pid > 0, `it reported the redis pid (${pid})`)) return;
    // SIGKILL is delivered at once, the reaping by init a moment later.
    const deadline = Date.now() + 3000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.notOk(alive(pid), 'the redis-server process is gone');
    t.notOk(await listening(PORT), 'and its port is free');
  });
}
