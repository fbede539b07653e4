import t from 'tap';
import { CallTracker } from '../../src/calls/tracker.js';
import type { ActiveCall, CallEvent, CallParty, ConfirmedDialog } from '../../src/calls/active-call.js';

const dialog = (callId: string, fromTag: string, toTag: string, parties: CallParty[]): ConfirmedDialog => ({ callId, fromTag, toTag, parties, ends: null, sessionExpires: 0 });

const caller = { extension: '200', device: 'anna-desk', direction: 'outbound' as const };
const callee = { extension: '100', device: 'hotline-desk-1', direction: 'inbound' as const };

function recorder(calls: CallTracker): string[] {
  const seen: string[] = [];
  calls.events.add((e: CallEvent) => seen.push(e.type === 'ended' ? `ended ${e.call.id} ${e.why}` : `confirmed ${e.call.id}`));
  return seen;
}

t.test('2xx confirms, BYE from either side ends, counters follow', async (t) => {
  let now = 1_000_000;
  const calls = new CallTracker(() => now);
  const seen = recorder(calls);
  const c = calls.confirmed(dialog('cid', 'ft', 'tt', [caller, callee]), 3600);
  t.ok(c, 'call created');
  t.equal(calls.confirmed(dialog('cid', 'ft', 'tt', [caller, callee]), 3600), undefined, 'retransmitted 2xx ignored');
  t.equal(calls.activeFor('200'), 1, 'caller extension is in a call');
  t.equal(calls.activeFor('100'), 1, 'callee extension is in a call');
  // A second 2xx of a forking race: its own dialog, tracked until its own BYE.
  calls.confirmed(dialog('cid', 'ft', 'tt2', [callee]), 3600);
  t.equal(calls.activeFor('100'), 2);
  // BYE sent by the callee: From/To tags swapped.
  const found = calls.find('cid', 'tt', 'ft');
  t.equal(found?.id, c!.id, 'dialog found from the callee side');
  calls.end(found!, 'bye');
  calls.end(found!, 'bye'); // ended already: nothing announced
  t.equal(calls.activeFor('200'), 0);
  t.equal(calls.activeFor('100'), 1, 'the race dialog is still up');
  now += 3601_000;
  t.equal(calls.sweep(), 1, 'maxCallDuration ends the dialog that lost its BYE');
  t.equal(calls.activeFor('100'), 0);
  t.equal(calls.size, 0);
  t.same(seen, ['confirmed cid;ft;tt', 'confirmed cid;ft;tt2', 'ended cid;ft;tt bye', 'ended cid;ft;tt2 expired']);
});

t.test('the confirmed event carries the stored call', async (t) => {
  const calls = new CallTracker(() => 5);
  let heard: ActiveCall | undefined;
  calls.events.add((e) => {
    if (e.type === 'confirmed') heard = e.call;
  });
  const c = calls.confirmed(dialog('x', 'a', 'b', [caller]), 60);
  t.equal(heard, c);
  t.same(heard, { id: 'x;a;b', callId: 'x', fromTag: 'a', toTag: 'b', parties: [caller], startedAt: 5, expiresAt: 60_005, ends: null, sessionExpires: 0 });
});

t.test('two devices of one extension in one dialog count once', async (t) => {
  const calls = new CallTracker();
  calls.confirmed(dialog('x', 'a', 'b', [{ extension: '200', device: 'anna-desk', direction: 'outbound' }, { extension: '200', device: 'anna-soft', direction: 'inbound' }]), 60);
  t.equal(calls.activeFor('200'), 1);
});

t.test('restore takes live calls silently and refuses those that expired while down', async (t) => {
  const now = 5_000_000;
  const live: ActiveCall = { id: 'l;a;b', callId: 'l', fromTag: 'a', toTag: 'b', parties: [callee], startedAt: now - 10, expiresAt: now + 1000, ends: null, sessionExpires: 0 };
  const dead: ActiveCall = { ...live, id: 'd;a;b', callId: 'd', expiresAt: now - 1 };
  const calls = new CallTracker(() => now);
  const seen = recorder(calls);
  t.equal(calls.restore(live), true);
  t.equal(calls.restore(dead), false);
  t.equal(calls.restore(live), false, 'known already');
  t.equal(calls.size, 1);
  t.equal(calls.activeFor('100'), 1);
  t.same(seen, []);
});

t.test('two devices of one extension in one dialog count that extension once', async (t) => {
  const calls = new CallTracker(() => 0);
  const c = calls.confirmed(
    {
      callId: 'internal',
      fromTag: 'a',
      toTag: 'b',
      parties: [
        { extension: '200', device: 'anna-desk', direction: 'outbound' },
        { extension: '200', device: 'anna-soft', direction: 'inbound' },
      ],
      ends: null,
      sessionExpires: 0,
    },
    60,
  )!;
  t.equal(calls.activeFor('200'), 1);
  calls.end(c, 'bye');
  t.equal(calls.activeFor('200'), 0);
  t.same([...calls.activeByExtension()], [], 'nothing left behind');
});
