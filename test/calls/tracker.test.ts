import t from 'tap';
import { CallTracker } from '../../src/calls/tracker.js';
import { MemoryPersistence } from '../../src/state/memory-persistence.js';
import type { ActiveCall } from '../../src/state/types.js';

const caller = { extension: '200', device: 'anna-desk', direction: 'outbound' as const };
const callee = { extension: '100', device: 'hotline-desk-1', direction: 'inbound' as const };

t.test('2xx confirms, BYE from either side ends, counters follow', async (t) => {
  let now = 1_000_000;
  const ended: string[] = [];
  const calls = new CallTracker(new MemoryPersistence(), () => now, { ended: (c, why) => ended.push(`${c.id}:${why}`) });
  const c = calls.confirmed('cid', 'ft', 'tt', [caller, callee], 3600);
  t.ok(c, 'call created');
  t.equal(calls.confirmed('cid', 'ft', 'tt', [caller, callee], 3600), undefined, 'retransmitted 2xx ignored');
  t.equal(calls.activeFor('200'), 1, 'caller extension is in a call');
  t.equal(calls.activeFor('100'), 1, 'callee extension is in a call');
  // A second 2xx of a forking race: its own dialog, tracked until its own BYE.
  calls.confirmed('cid', 'ft', 'tt2', [callee], 3600);
  t.equal(calls.activeFor('100'), 2);
  // BYE sent by the callee: From/To tags swapped.
  const found = calls.find('cid', 'tt', 'ft');
  t.equal(found?.id, c!.id, 'dialog found from the callee side');
  calls.end(found!, 'bye');
  t.equal(calls.activeFor('200'), 0);
  t.equal(calls.activeFor('100'), 1, 'the race dialog is still up');
  t.same(ended, ['cid;ft;tt:bye']);
  now += 3601_000;
  t.equal(calls.sweep(), 1, 'maxCallDuration ends the dialog that lost its BYE');
  t.equal(calls.activeFor('100'), 0);
});

t.test('two devices of one extension in one dialog count once', async (t) => {
  const calls = new CallTracker(new MemoryPersistence());
  calls.confirmed('x', 'a', 'b', [{ extension: '200', device: 'anna-desk', direction: 'outbound' }, { extension: '200', device: 'anna-soft', direction: 'inbound' }], 60);
  t.equal(calls.activeFor('200'), 1);
});

t.test('restore drops calls that expired while down', async (t) => {
  const now = 5_000_000;
  const live: ActiveCall = { id: 'l;a;b', callId: 'l', fromTag: 'a', toTag: 'b', parties: [callee], startedAt: now - 10, expiresAt: now + 1000 };
  const dead: ActiveCall = { ...live, id: 'd;a;b', callId: 'd', expiresAt: now - 1 };
  const calls = new CallTracker(new MemoryPersistence(), () => now);
  calls.restore(new Map<string, unknown>([[live.id, live], [dead.id, dead], ['junk', 42]]));
  t.equal(calls.size, 1);
  t.equal(calls.activeFor('100'), 1);
});
