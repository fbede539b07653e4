import t from 'tap';
import { CallTracker } from '../../src/calls/tracker.js';
import type { Config } from '../../src/config/types.js';
import { Directory } from '../../src/directory/directory.js';
import { LocationService } from '../../src/location/location.js';
import { persistStores, restoreStores, type Stores } from '../../src/state/persist-stores.js';
import type { Kind, Loaded, Persistence, StoredKinds } from '../../src/state/types.js';
import { binding } from '../location/fixtures.js';

const config = {
  extensions: [{ number: '200', name: 'Anna', busyOnBusy: true, declineEndsCall: false, devices: [{ username: 'anna', password: 'pw' }] }],
} as unknown as Config;

/** Records every put and del as "put kind key" / "del kind key", and the values put. */
class FakePersistence implements Persistence {
  readonly ops: string[] = [];
  readonly values: unknown[] = [];
  async load(): Promise<Loaded> {
    return { binding: new Map(), call: new Map(), setting: new Map() };
  }
  put<K extends Kind>(kind: K, key: string, value: StoredKinds[K]): void {
    this.ops.push(`put ${kind} ${key}`);
    this.values.push(value);
  }
  del(kind: Kind, key: string): void {
    this.ops.push(`del ${kind} ${key}`);
  }
  async close(): Promise<void> {}
}

function stores(now: () => number): Stores {
  return { location: new LocationService(now), calls: new CallTracker(now), directory: new Directory(config) };
}

t.test('each change of a store becomes one put or del', async (t) => {
  let now = 1000;
  const s = stores(() => now);
  const p = new FakePersistence();
  const stop = persistStores(s, p);
  const b = binding('anna', 5062, 5000);
  s.location.upsert(b);
  s.location.upsert(binding('anna', 5062, 6000)); // refresh
  s.location.remove('anna', b.contact);
  s.location.upsert(binding('anna', 5064, 2000));
  now = 3000;
  s.location.sweep();
  const call = s.calls.confirmed({ callId: 'cid', fromTag: 'ft', toTag: 'tt', parties: [{ extension: '200', device: 'anna', direction: 'inbound' }], ends: null, sessionExpires: 0 }, 60)!;
  s.calls.end(call, 'bye');
  s.directory.setBusyOnBusy('200', false);
  t.same(p.ops, [
    'put binding anna\nsip:anna@127.0.0.2:5062',
    'put binding anna\nsip:anna@127.0.0.2:5062',
    'del binding anna\nsip:anna@127.0.0.2:5062',
    'put binding anna\nsip:anna@127.0.0.2:5064',
    'del binding anna\nsip:anna@127.0.0.2:5064',
    'put call cid;ft;tt',
    'del call cid;ft;tt',
    'put setting 200',
  ]);
  t.equal(p.values[0], b, 'the store\'s own object, not a copy');
  t.equal(p.values[3], call);
  t.same(p.values[4], { busyOnBusy: false });
  stop();
  s.directory.setBusyOnBusy('200', true);
  t.equal(p.ops.length, 8, 'nothing recorded after stop');
});

t.test('restore hands back what the stores take and deletes the rest', async (t) => {
  const now = 10_000;
  const s = stores(() => now);
  const p = new FakePersistence();
  let announced = 0;
  s.location.events.add(() => announced++);
  s.calls.events.add(() => announced++);
  s.directory.events.add(() => announced++);
  const live = binding('anna', 5062, now + 1);
  const loaded: Loaded = {
    setting: new Map([['200', { busyOnBusy: false }]]),
    binding: new Map([
      ['anna\nsip:anna@127.0.0.2:5062', live],
      ['anna\nsip:anna@127.0.0.2:5064', binding('anna', 5064, now)],
      ['gone\nsip:gone@127.0.0.2:5066', binding('gone', 5066, now + 1)],
      // Another instance's (several instances): its owner decides about it, even when unknown here.
      ['other\nsip:other@127.0.0.2:5068', binding('other', 5068, now + 1, { owner: 'sip-b', path: { transport: 'udp', address: '127.0.3.2', port: 5060 } })],
    ]),
    call: new Map([
      ['c;a;b', { id: 'c;a;b', callId: 'c', fromTag: 'a', toTag: 'b', parties: [], startedAt: 0, expiresAt: now + 1, ends: null, sessionExpires: 0 }],
      ['d;a;b', { id: 'd;a;b', callId: 'd', fromTag: 'a', toTag: 'b', parties: [], startedAt: 0, expiresAt: now, ends: null, sessionExpires: 0 }],
      ['e;a;b', { id: 'e;a;b', callId: 'e', fromTag: 'a', toTag: 'b', parties: [], startedAt: 0, expiresAt: now, ends: null, sessionExpires: 0, owner: 'sip-b' }],
    ]),
  };
  restoreStores(s, loaded, p);
  t.equal(s.directory.busyOnBusy('200'), false, 'setting restored');
  t.same(s.location.lookup('anna'), [live], 'the live binding, the very object');
  t.equal(s.calls.size, 1);
  t.same(p.ops, ['del binding anna\nsip:anna@127.0.0.2:5064', 'del binding gone\nsip:gone@127.0.0.2:5066', 'del call d;a;b'], 'expired and unknown-device records deleted');
  t.equal(announced, 0, 'restoring announces nothing');
});
