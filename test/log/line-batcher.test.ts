import t from 'tap';
import { pino } from 'pino';
import { LineBatcher, type LineWriter } from '../../src/log/line-batcher.js';

class Recorder implements LineWriter {
  writes: string[] = [];
  syncs = 0;
  write(data: Buffer): void {
    // sonic-boom runs in contentMode 'buffer' (cli.ts): a string would be a bug.
    if (!Buffer.isBuffer(data)) throw new Error('the writer got a string');
    this.writes.push(data.toString('utf8'));
  }
  flushSync(): void {
    this.syncs++;
  }
}

t.test('lines wait until the batch is full, then go out as one write in order', async (t) => {
  const out = new Recorder();
  const b = new LineBatcher(out, 30);
  t.equal(b.pending, false);
  b.write('{"n":1}\n');
  b.write('{"n":2}\n');
  t.same(out.writes, [], 'below the batch length nothing is written');
  t.equal(b.pending, true);
  b.write('{"n":3}\n');
  b.write('{"n":4}\n'); // 32 characters: the batch is full
  t.same(out.writes, ['{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n']);
  t.equal(b.pending, false);
});

t.test('flush writes what is pending, and nothing when nothing is', async (t) => {
  const out = new Recorder();
  const b = new LineBatcher(out, 4096);
  b.flush();
  t.same(out.writes, [], 'an idle flush does not write');
  b.write('a\n');
  b.flush();
  b.flush();
  t.same(out.writes, ['a\n']);
  b.write('b \u00fc\n');
  b.flushSync();
  t.same(out.writes, ['a\n', 'b \u00fc\n'], 'UTF-8 bytes');
  t.equal(out.syncs, 1, 'flushSync also drains the writer');
});

t.test('pino writes whole JSON lines through it', async (t) => {
  const out = new Recorder();
  const b = new LineBatcher(out, 4096);
  const log = pino({ base: { name: 'sipbob' } }, b);
  log.info({ callId: 'c1', branches: [{ device: 'a', status: 200 }] }, 'call outcome');
  log.info({ callId: 'c1', why: 'bye' }, 'call ended');
  t.same(out.writes, [], 'batched');
  b.flush();
  t.equal(out.writes.length, 1);
  const lines = out.writes[0]!.split('\n');
  t.equal(lines.pop(), '', 'ends with a newline');
  const parsed = lines.map((l) => JSON.parse(l) as { msg: string; callId: string; branches?: unknown });
  t.same(
    parsed.map((p) => [p.msg, p.callId]),
    [
      ['call outcome', 'c1'],
      ['call ended', 'c1'],
    ],
  );
  t.same(parsed[0]!.branches, [{ device: 'a', status: 200 }]);
});
