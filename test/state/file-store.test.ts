import t, { type Test } from 'tap';
import { appendFileSync, closeSync, existsSync, openSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, type FileStoreOptions, type PersistenceLogger } from '../../src/state/file/file-store.js';
import { MemoryPersistence } from '../../src/state/memory-persistence.js';
import type { Codec } from '../../src/state/types.js';

// The journal, snapshot, compaction and replay machinery, with kinds whose values are any JSON.
// test/state/file-persistence.test.ts covers the real kinds and their stored form.
const anyJson: Codec<unknown> = { json: (v) => JSON.stringify(v) ?? 'null', decode: (v) => v };
type TestKinds = { binding: unknown; setting: unknown; call: unknown };
const codecs = { binding: anyJson, setting: anyJson, call: anyJson };
class FilePersistence extends FileStore<TestKinds> {
  constructor(dir: string, opts?: FileStoreOptions) {
    super(dir, codecs, opts);
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sipbob-persist-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function collectingLogger(): PersistenceLogger & { messages: string[] } {
  const messages: string[] = [];
  return { messages, warn: (_obj, msg) => void messages.push(msg) };
}

/** The loaded kinds as a plain object without the empty ones, for t.same. */
function plain(state: Record<string, Map<string, unknown>>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [kind, m] of Object.entries(state)) if (m.size > 0) out[kind] = Object.fromEntries(m);
  return out;
}

const binding = (user: string, port: number) => ({
  username: user,
  extension: '200',
  contact: `sip:${user}@127.0.0.2:${port}`,
  expiresAt: 1_700_000_600_000,
  callId: `cid-${user}`,
  cseq: 2,
  source: `udp:127.0.0.2:${port}`,
  transport: 'udp',
  userAgent: 'Yealink T46U äöü', // UTF-8 survives
});

t.test('put/del/load round trip across instances', async (t) => {
  const dir = join(tempDir(t), 'nested', 'data'); // created recursively
  const log = collectingLogger();

  const a = new FilePersistence(dir, { logger: log });
  t.same(plain(await a.load()), {}, 'empty dir: empty state');
  t.ok(existsSync(dir), 'directory created');
  a.put('binding', 'anna-desk\nsip:anna-desk@127.0.0.2:5062', binding('anna-desk', 5062));
  a.put('binding', 'anna-soft\nsip:anna-soft@127.0.0.2:5064', binding('anna-soft', 5064));
  a.put('setting', '200', { busyOnBusy: false });
  a.put('setting', '200', { busyOnBusy: true }); // last write wins
  a.put('call', 'c1;ft;tt', { id: 'c1;ft;tt' });
  await nextTurn();
  a.del('call', 'c1;ft;tt');
  a.put('binding', 'anna-soft\nsip:anna-soft@127.0.0.2:5064', binding('anna-soft', 5066));
  await a.close();

  const b = new FilePersistence(dir, { logger: log });
  const loaded = await b.load();
  t.same(plain(loaded), {
    binding: {
      'anna-desk\nsip:anna-desk@127.0.0.2:5062': binding('anna-desk', 5062),
      'anna-soft\nsip:anna-soft@127.0.0.2:5064': binding('anna-soft', 5066),
    },
    setting: { '200': { busyOnBusy: true } },
  });
  // The returned maps are the caller's: changing them does not change the store.
  loaded.setting.set('999', { busyOnBusy: false });
  b.put('setting', '300', { busyOnBusy: true });
  await b.close();

  const c = new FilePersistence(dir, { logger: log });
  t.same(plain(await c.load()).setting, { '200': { busyOnBusy: true }, '300': { busyOnBusy: true } });
  await c.close();
  t.same(log.messages, [], 'no warnings');
});

t.test('a value is captured at put time', async (t) => {
  const dir = tempDir(t);
  const p = new FilePersistence(dir);
  await p.load();
  const v = { busyOnBusy: false };
  p.put('setting', '200', v);
  v.busyOnBusy = true; // mutated before the flush
  await p.close();
  const q = new FilePersistence(dir);
  t.same(plain(await q.load()).setting, { '200': { busyOnBusy: false } });
  await q.close();
});

t.test('a batch is one write per event-loop turn, and on disk after it', async (t) => {
  const dir = tempDir(t);
  const p = new FilePersistence(dir);
  await p.load();
  const journal = join(dir, 'state.jsonl');

  for (let i = 0; i < 100; i++) p.put('binding', `u${i}`, { i });
  p.del('binding', 'u0');
  t.equal(statSync(journal).size, 0, 'nothing written within the turn');
  t.equal(p.stats.writes, 0);
  await nextTurn();
  t.equal(p.stats.writes, 1, 'one write for 101 records');
  t.equal(p.stats.journalRecords, 101);
  const lines = readFileSync(journal, 'utf8').split('\n');
  t.equal(lines.length, 102, '101 lines and a final newline');
  t.equal(lines[101], '');
  t.same(JSON.parse(lines[0]!), { k: 'binding', key: 'u0', v: { i: 0 } });
  t.same(JSON.parse(lines[100]!), { k: 'binding', key: 'u0', d: 1 });

  // Simulate kill -9 now: no close(), a second instance reads what is on disk.
  const q = new FilePersistence(dir);
  t.equal((await q.load()).binding.size, 99, 'survives without close()');
  await q.close();

  p.put('binding', 'x', 1);
  await nextTurn();
  await nextTurn(); // an idle turn writes nothing
  t.equal(p.stats.writes, 2, 'next turn, next single write');
  await p.close();
});

t.test('deletes of unknown keys are harmless', async (t) => {
  const dir = tempDir(t);
  const p = new FilePersistence(dir);
  await p.load();
  p.del('binding', 'nobody');
  p.del('no-such-kind' as 'call', 'x');
  await nextTurn();
  t.equal(p.stats.writes, 0, 'nothing to record');
  p.put('call', 'a', { id: 'a' });
  p.del('call', 'a');
  p.del('call', 'a'); // second delete: no-op
  await p.close();
  const lines = readFileSync(join(dir, 'state.jsonl'), 'utf8').trim().split('\n');
  t.equal(lines.length, 2, 'put and one delete');

  const q = new FilePersistence(dir);
  t.same(plain(await q.load()), {});
  await q.close();
});

t.test('torn last line (kill -9 mid-write) is skipped with a warning', async (t) => {
  const dir = tempDir(t);
  const p = new FilePersistence(dir);
  await p.load();
  p.put('setting', '200', { busyOnBusy: true });
  p.put('setting', '100', { busyOnBusy: false });
  await p.close();
  const journal = join(dir, 'state.jsonl');
  appendFileSync(journal, '{"k":"setting","key":"300","v":{"busyOn');

  const log = collectingLogger();
  const q = new FilePersistence(dir, { logger: log });
  t.same(plain(await q.load()), { setting: { '200': { busyOnBusy: true }, '100': { busyOnBusy: false } } });
  t.equal(log.messages.length, 1, 'one warning');
  t.match(log.messages[0], /torn/);
  // The fragment was cut off, so the next record starts on a line of its own.
  q.put('setting', '400', { busyOnBusy: true });
  await q.close();
  t.notMatch(readFileSync(journal, 'utf8'), /busyOn\{/, 'no glued line');

  const r = new FilePersistence(dir, { logger: log });
  t.same(Object.keys(plain(await r.load()).setting!).sort(), ['100', '200', '400']);
  t.equal(log.messages.length, 1, 'clean after the repair');
  await r.close();
});

t.test('a whole last record without its newline is kept', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'state.jsonl'), '{"k":"setting","key":"1","v":1}\n{"k":"setting","key":"2","v":2}');
  const log = collectingLogger();
  const p = new FilePersistence(dir, { logger: log });
  t.same(plain(await p.load()), { setting: { '1': 1, '2': 2 } });
  p.put('setting', '3', 3);
  await p.close();
  const q = new FilePersistence(dir, { logger: log });
  t.same(plain(await q.load()), { setting: { '1': 1, '2': 2, '3': 3 } });
  await q.close();
  t.same(log.messages, []);
});

t.test('damaged lines in the middle and junk records are skipped, never thrown', async (t) => {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'state.jsonl'),
    [
      '{"k":"setting","key":"1","v":1}',
      'garbage',
      '\u0000\u0000\u0000',
      '[1,2]',
      '{"k":1,"key":"x","v":1}',
      '{"k":"setting","key":"nov"}',
      'null',
      '{"k":"setting","key":"2","v":2}',
      '',
    ].join('\n'),
  );
  const log = collectingLogger();
  const p = new FilePersistence(dir, { logger: log });
  t.same(plain(await p.load()), { setting: { '1': 1, '2': 2 } });
  t.equal(log.messages.length, 1, 'one summary warning');
  await p.close();
});

t.test('compaction keeps the same state and shrinks the journal', async (t) => {
  const dir = tempDir(t);
  const journal = join(dir, 'state.jsonl');
  const p = new FilePersistence(dir, { compactAfter: 50 });
  await p.load();
  const expected: Record<string, unknown> = {};
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 20; i++) {
      const key = `k${i}`;
      if ((i + round) % 3 === 0) {
        p.del('binding', key);
        delete expected[key];
      } else {
        p.put('binding', key, { round, i });
        expected[key] = { round, i };
      }
    }
    p.put('setting', '200', { busyOnBusy: round % 2 === 0 });
    await nextTurn();
  }
  t.ok(p.stats.compactions >= 2, `compacted ${p.stats.compactions} times`);
  t.ok(p.stats.journalRecords <= 50 + 21, 'journal stays bounded');
  t.ok(existsSync(join(dir, 'snapshot.json')), 'snapshot written');
  t.notOk(existsSync(join(dir, 'snapshot.json.tmp')), 'no tmp left behind');
  const lines = readFileSync(journal, 'utf8').split('\n').length - 1;
  t.equal(lines, p.stats.journalRecords, 'journal holds only records since the last compaction');
  t.ok(lines < 10 * 21, `journal shrank: ${lines} lines instead of ${10 * 21}`);
  await p.close();

  const q = new FilePersistence(dir, { compactAfter: 50 });
  const state = plain(await q.load());
  t.same(state.binding, expected, 'same bindings after snapshot + journal replay');
  t.same(state.setting, { '200': { busyOnBusy: false } });
  await q.close();

  // A crash between snapshot rename and journal truncation replays an old journal over a new
  // snapshot; the result must be the same.
  const oldJournal = readFileSync(journal);
  const r = new FilePersistence(dir, { compactAfter: 1 });
  await r.load(); // 1 < journal size: compacts at load
  t.equal(r.stats.compactions, 1, 'compacted at load');
  await r.close();
  writeFileSync(journal, oldJournal);
  const s = new FilePersistence(dir);
  t.same(plain(await s.load()).binding, expected, 'old journal over new snapshot: same state');
  await s.close();
});

t.test('an unreadable snapshot is moved aside, not overwritten', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'snapshot.json'), '{"version":99,"state":[]}');
  writeFileSync(join(dir, 'state.jsonl'), '{"k":"setting","key":"1","v":1}\n');
  const log = collectingLogger();
  const p = new FilePersistence(dir, { logger: log });
  t.same(plain(await p.load()), { setting: { '1': 1 } }, 'journal still replayed');
  t.equal(log.messages.length, 1);
  t.notOk(existsSync(join(dir, 'snapshot.json')));
  await p.close();
});

t.test('misuse', async (t) => {
  const dir = tempDir(t);
  const log = collectingLogger();
  const p = new FilePersistence(dir, { logger: log });
  t.throws(() => p.put('setting', '1', 1), /load\(\)/, 'put before load() is a wiring bug');
  await p.load();
  await p.close();
  await p.close(); // idempotent
  p.put('setting', '1', 1);
  t.equal(log.messages.length, 1, 'put after close() warns and is ignored');
  await t.rejects(p.load(), /after close/);
});

t.test('MemoryPersistence keeps nothing', async (t) => {
  const m = new MemoryPersistence();
  m.put('setting', '200', { busyOnBusy: true });
  m.del('setting', '200');
  t.same(plain(await m.load()), {});
  await m.close();
});

t.test('a failed journal write is repaired from memory by the next flush', async (t) => {
  const dir = tempDir(t);
  const log = collectingLogger();
  const p = new FilePersistence(dir, { logger: log });
  await p.load();
  p.put('setting', '1', 1);
  await nextTurn();

  // Swap in a read-only descriptor so the next write(2) fails with EBADF.
  const inner = (p as unknown as { journal: { fd: number } }).journal;
  const good = inner.fd;
  inner.fd = openSync(join(dir, 'state.jsonl'), 'r');
  p.put('setting', '2', 2);
  await nextTurn();
  t.equal(log.messages.length, 1, 'warned, did not throw');
  closeSync(inner.fd);
  inner.fd = good;

  p.put('setting', '3', 3);
  await nextTurn();
  t.equal(p.stats.compactions, 1, 'rewrote everything as a snapshot');
  await p.close();
  const q = new FilePersistence(dir);
  t.same(plain(await q.load()), { setting: { '1': 1, '2': 2, '3': 3 } }, 'the lost record is back');
  await q.close();
});

t.test('a large live state is not rewritten every compactAfter changes', async (t) => {
  const dir = tempDir(t);
  const p = new FilePersistence(dir, { compactAfter: 10 });
  await p.load();
  for (let i = 0; i < 1000; i++) p.put('binding', `k${i}`, { i });
  await nextTurn();
  const after = p.stats.compactions;
  // 500 refreshes: the journal (1500) is already longer than the live state (1000)...
  for (let i = 0; i < 500; i++) p.put('binding', `k${i}`, { i, again: true });
  await nextTurn();
  t.equal(p.stats.compactions, after + 1, 'one compaction once the journal outgrew the live state');
  // ...and after it, 500 more changes (< 1000 live) do not compact again.
  for (let i = 0; i < 500; i++) p.put('binding', `k${i}`, { i, third: true });
  await nextTurn();
  t.equal(p.stats.compactions, after + 1, 'no rewrite of 1000 records for 500 changes');
  await p.close();
  const q = new FilePersistence(dir);
  t.same((await q.load()).binding.get('k1'), { i: 1, third: true });
  await q.close();
});

t.test('a large state is compacted over several turns while changes keep coming', async (t) => {
  const dir = tempDir(t);
  const p = new FilePersistence(dir, { compactAfter: 10, chunkEntries: 100 });
  await p.load();
  const expected: Record<string, unknown> = {};
  for (let i = 0; i < 1000; i++) {
    p.put('binding', `k${i}`, { v: 0, i });
    expected[`k${i}`] = { v: 0, i };
  }
  await nextTurn();
  // 1000 more changes: the journal (2000) outgrows the live state (1000) and a compaction starts.
  for (let i = 0; i < 1000; i++) {
    p.put('binding', `k${i}`, { v: 1, i });
    expected[`k${i}`] = { v: 1, i };
  }
  await nextTurn();
  t.equal(p.stats.compactions, 0, 'not done in one turn: 1000 values at 100 per turn');
  // Changes made while the snapshot is being written land in the journal and survive the cut.
  for (let round = 0; round < 3; round++) {
    p.put('binding', `new${round}`, { round });
    expected[`new${round}`] = { round };
    p.del('binding', `k${round}`);
    delete expected[`k${round}`];
    await nextTurn();
  }
  for (let i = 0; i < 20 && p.stats.compactions === 0; i++) await nextTurn();
  t.equal(p.stats.compactions, 1, 'compaction finished');
  t.ok(p.stats.journalRecords < 100, `journal cut down to what came after the capture (${p.stats.journalRecords} records)`);
  const lines = readFileSync(join(dir, 'state.jsonl'), 'utf8').split('\n').length - 1;
  t.equal(lines, p.stats.journalRecords, 'the journal file holds exactly those records');
  t.notOk(existsSync(join(dir, 'snapshot.json.tmp')), 'no tmp left behind');
  t.notOk(existsSync(join(dir, 'state.jsonl.next')), 'no journal tmp left behind');
  p.put('binding', 'after', { ok: true });
  expected.after = { ok: true };
  await p.close();
  const q = new FilePersistence(dir);
  t.same(plain(await q.load()).binding, expected, 'snapshot + cut journal give the same state');
  await q.close();
});

t.test('close() during an incremental compaction loses nothing', async (t) => {
  const dir = tempDir(t);
  const p = new FilePersistence(dir, { compactAfter: 10, chunkEntries: 50 });
  await p.load();
  const expected: Record<string, unknown> = {};
  for (let r = 0; r < 2; r++) {
    for (let i = 0; i < 500; i++) {
      p.put('binding', `k${i}`, { r, i });
      expected[`k${i}`] = { r, i };
    }
    await nextTurn();
  }
  t.equal(p.stats.compactions, 0, 'compaction under way');
  await p.close();
  t.notOk(existsSync(join(dir, 'snapshot.json')), 'the unfinished snapshot never replaced anything');
  t.notOk(existsSync(join(dir, 'snapshot.json.tmp')), 'and its tmp file is gone');
  const q = new FilePersistence(dir);
  t.same(plain(await q.load()).binding, expected, 'the whole journal is still there');
  await q.close();
});

t.test('kinds without a codec are kept as they are, through compaction too', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'state.jsonl'), '{"k":"future","key":"x","v":{"a":[1,2]}}\n' + '{"k":"setting","key":"1","v":1}\n'.repeat(3));
  const p = new FilePersistence(dir, { compactAfter: 1 });
  t.same(plain(await p.load()), { setting: { '1': 1 } }, 'not handed out: nobody can read it');
  t.equal(p.stats.compactions, 1, 'compacted at load');
  await p.close();
  t.match(readFileSync(join(dir, 'snapshot.json'), 'utf8'), '["future",[["x",{"a":[1,2]}]]]', 'written back unchanged');
});

t.test('a record its codec does not accept is dropped and deleted on disk', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'state.jsonl'), '{"k":"setting","key":"1","v":1}\n{"k":"setting","key":"2","v":"bad"}\n');
  const picky = { ...codecs, setting: { json: anyJson.json, decode: (v: unknown) => (typeof v === 'number' ? v : undefined) } };
  const p = new FileStore<TestKinds>(dir, picky);
  t.same(plain(await p.load()), { setting: { '1': 1 } });
  await p.close();
  t.match(readFileSync(join(dir, 'state.jsonl'), 'utf8'), '{"k":"setting","key":"2","d":1}\n', 'a delete record written');
});
