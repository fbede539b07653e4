import t from 'tap';
import type { LocationEvent } from '../../src/location/binding.js';
import { LocationService, MAX_CONTACTS_PER_DEVICE } from '../../src/location/location.js';
import { binding } from './fixtures.js';

/** The events as short strings: "added anna:5062", "removed anna:5062 expired". */
function recorder(location: LocationService): string[] {
  const seen: string[] = [];
  location.events.add((e: LocationEvent) => {
    const b = `${e.binding.username}:${e.binding.source.port}`;
    if (e.type === 'removed') seen.push(`removed ${b} ${e.reason}`);
    else if (e.type === 'refreshed') seen.push(`refreshed ${b} was ${e.previous.expiresAt}`);
    else seen.push(`added ${b}`);
  });
  return seen;
}

t.test('added, refreshed, unregistered, expired', async (t) => {
  let now = 1_000_000;
  const location = new LocationService(() => now);
  const seen = recorder(location);
  location.upsert(binding('anna', 5062, now + 60_000));
  location.upsert(binding('anna', 5064, now + 60_000));
  const again = binding('anna', 5062, now + 120_000);
  location.upsert(again);
  t.equal(location.lookup('anna').length, 2);
  t.equal(location.byContactUri('sip:anna@127.0.0.2:5062'), again, 'the refreshed binding is the one found');
  location.remove('anna', 'sip:anna@127.0.0.2:5064');
  location.remove('anna', 'sip:nobody@x'); // nothing to remove: no event
  now += 120_000;
  t.equal(location.sweep(), 1);
  t.same(seen, ['added anna:5062', 'added anna:5064', `refreshed anna:5062 was ${1_060_000}`, 'removed anna:5064 unregistered', 'removed anna:5062 expired']);
  t.equal(location.contacts(), 0);
  t.equal(location.registeredDevices(), 0);
});

t.test('the oldest contact is replaced past the per-device limit', async (t) => {
  const location = new LocationService(() => 0);
  const seen = recorder(location);
  for (let i = 0; i <= MAX_CONTACTS_PER_DEVICE; i++) location.upsert(binding('anna', 6000 + i, 10_000 + (i === 3 ? -1 : i)));
  t.equal(location.contacts(), MAX_CONTACTS_PER_DEVICE);
  t.same(seen.slice(-2), ['removed anna:6003 replaced', `added anna:${6000 + MAX_CONTACTS_PER_DEVICE}`], 'removal announced before the addition');
});

t.test('removeAll: Contact * unregisters, a device gone from the config is device-removed', async (t) => {
  const location = new LocationService(() => 0);
  const seen = recorder(location);
  location.upsert(binding('anna', 5062, 10));
  location.upsert(binding('anna', 5064, 10));
  location.upsert(binding('bert', 5070, 10));
  location.removeAll('anna');
  location.removeAll('bert', 'device-removed');
  t.same(seen.slice(3).sort(), ['removed anna:5062 unregistered', 'removed anna:5064 unregistered', 'removed bert:5070 device-removed']);
});

t.test('restore takes unexpired bindings silently', async (t) => {
  const location = new LocationService(() => 1000);
  const seen = recorder(location);
  t.equal(location.restore(binding('anna', 5062, 2000)), true);
  t.equal(location.restore(binding('anna', 5064, 1000)), false, 'expired while down');
  t.equal(location.restore(binding('anna', 5062, 3000)), false, 'the same contact twice');
  t.same(seen, [], 'a restore is not a change');
  t.equal(location.contacts(), 1);
  t.equal(location.lookup('anna')[0]!.expiresAt, 2000);
});

t.test('removeFlow: a closed stream connection takes exactly the bindings registered over it', async (t) => {
  const now = 1_000_000;
  const T0 = now;
  const loc = new LocationService(() => now);
  const events: LocationEvent[] = [];
  loc.events.add((e: LocationEvent) => events.push(e));
  const tls1 = { transport: 'tls' as const, address: '192.0.2.7', port: 40001 };
  const tls2 = { transport: 'tls' as const, address: '192.0.2.7', port: 40002 };
  loc.upsert(binding('anna', 5061, T0 + 600_000, { source: tls1, dest: tls1 }));
  loc.upsert(binding('anna', 5062, T0 + 600_000, { source: tls2, dest: tls2 }));
  loc.upsert(binding('bob', 5063, T0 + 600_000, { source: tls1, dest: tls1 }));
  // A UDP binding from the same address and port is not that connection.
  loc.upsert(binding('carl', 40001, T0 + 600_000, { source: { transport: 'udp', address: '192.0.2.7', port: 40001 } }));
  // A refresh over the same connection replaces the indexed binding, not adds one.
  loc.upsert(binding('anna', 5061, T0 + 700_000, { source: tls1, dest: tls1 }));
  events.length = 0;
  t.equal(loc.removeFlow({ ...tls1 }), 2, 'anna@5061 and bob over the closed connection');
  t.same(
    events.map((e) => (e.type === 'removed' ? `${e.binding.username}:${e.reason}` : e.type)).sort(),
    ['anna:connection-closed', 'bob:connection-closed'],
  );
  t.equal(loc.lookup('anna').length, 1, 'the binding over the other connection stays');
  t.equal(loc.lookup('carl').length, 1, 'UDP is no connection');
  t.equal(loc.removeFlow(tls1), 0, 'nothing left on it');
  loc.remove('anna', 'sip:anna@127.0.0.2:5062');
  t.equal(loc.removeFlow(tls2), 0, 'an unregistered binding leaves the flow index too');
});

t.test('forget with an owner takes only that instance\'s binding (several instances)', async (t) => {
  const location = new LocationService(() => 0);
  const seen = recorder(location);
  const contact = binding('anna', 5062).contact;
  // The same device and contact, held by this instance: another instance's removal of its own
  // (stale) binding under that key leaves ours alone.
  location.upsert(binding('anna', 5062, 10_000));
  location.forget('anna', contact, 'sip-a');
  t.equal(location.lookup('anna').length, 1, 'our own binding stays');
  // Mirrored from sip-b: sip-a's removal leaves it; sip-b's takes it; without an owner, any goes.
  location.mirror(binding('anna', 5062, 10_000, { owner: 'sip-b', path: { transport: 'udp', address: '127.0.3.2', port: 5060 } }));
  location.forget('anna', contact, 'sip-a');
  t.equal(location.lookup('anna')[0]?.owner, 'sip-b', 'sip-b\'s binding stays when sip-a\'s goes');
  location.forget('anna', contact, 'sip-b');
  t.same(location.lookup('anna'), [], 'its owner\'s removal takes it');
  location.mirror(binding('anna', 5062, 10_000, { owner: 'sip-b', path: { transport: 'udp', address: '127.0.3.2', port: 5060 } }));
  location.forget('anna', contact);
  t.same(location.lookup('anna'), [], 'no owner named: whichever it is');
  t.same(seen, ['added anna:5062'], 'forget announces nothing');
});
