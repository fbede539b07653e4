import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ActiveCall } from '../../src/calls/active-call.js';
import { FilePersistence } from '../../src/state/file-persistence.js';
import { bindingCodec, callCodec, settingCodec } from '../../src/state/records.js';
import { binding } from '../location/fixtures.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sipbob-persist-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A binding as it was stored before the stores had events: source as a string, and a transport field. */
const oldRecord = (user: string, port: number, transport = 'udp') => ({
  username: user,
  extension: '200',
  contact: `sip:${user}@127.0.0.2:${port}`,
  expiresAt: 1_700_000_600_000,
  callId: `cid-${user}`,
  cseq: 2,
  source: `${transport}:127.0.0.2:${port}`,
  transport,
  userAgent: 'Yealink T46U äöü',
});

const call: ActiveCall = {
  id: 'c1;ft;tt',
  callId: 'c1',
  fromTag: 'ft',
  toTag: 'tt',
  parties: [{ extension: '200', device: 'anna', direction: 'inbound' }],
  startedAt: 1,
  expiresAt: 2,
  ends: null,
  sessionExpires: 0,
};

t.test('stored form: what JSON.stringify wrote for the old records, byte for byte', async (t) => {
  t.equal(bindingCodec.json(binding('anna', 5062)), JSON.stringify(oldRecord('anna', 5062)));
  const q = { ...oldRecord('anna', 5062), qValue: 0.5 };
  t.equal(bindingCodec.json(binding('anna', 5062, undefined, { qValue: 0.5 })), JSON.stringify(q), 'with a q-value');
  t.equal(bindingCodec.json(binding('anna', 5062, undefined, { qValue: Infinity })), JSON.stringify({ ...q, qValue: Infinity }), 'a q of 1e999');
  const v6Source = { transport: 'tcp' as const, address: '::1', port: 40312 };
  const v6 = { ...binding('anna', 5062), userAgent: 'say "hi"\n', source: v6Source, dest: v6Source };
  t.equal(bindingCodec.json(v6), JSON.stringify({ ...oldRecord('anna', 5062), source: 'tcp:::1:40312', transport: 'tcp', userAgent: 'say "hi"\n' }));
  t.equal(callCodec.json(call), JSON.stringify(call));
  t.equal(settingCodec.json({ busyOnBusy: true }), JSON.stringify({ busyOnBusy: true }));
});

t.test('a binding reached at its Contact keeps that dest; one stored without a dest is reached at its source', async (t) => {
  const source = { transport: 'udp' as const, address: '127.0.0.2', port: 40000 };
  const dest = { transport: 'udp' as const, address: '127.0.0.2', port: 5062 };
  const b = binding('anna', 5062, undefined, { source, dest });
  const text = bindingCodec.json(b);
  t.equal(text, JSON.stringify({ ...oldRecord('anna', 5062), source: 'udp:127.0.0.2:40000', dest: 'udp:127.0.0.2:5062' }), 'dest written after the old fields');
  t.same(bindingCodec.decode(JSON.parse(text)), b, 'read back');
  const old = bindingCodec.decode(oldRecord('anna', 5062))!;
  t.equal(old.dest, old.source, 'an old record: dest is its source (the same object, so it is not written)');
  t.equal(bindingCodec.decode({ ...oldRecord('anna', 5062), dest: 'garbage' })?.dest.port, 5062, 'an unreadable dest: the source');
});

t.test('RFC 5626: instance and reg-id are stored and read back; records without them still load', async (t) => {
  const source = { transport: 'tls' as const, address: '127.0.0.2', port: 40999 };
  const instance = '<urn:uuid:4f1c2a2e-0000-4000-8000-00000000a001>';
  const flow = binding('anna', 5062, undefined, { source, dest: source, qValue: 0.5, instance, regId: 2 });
  const text = bindingCodec.json(flow);
  t.equal(
    text,
    JSON.stringify({ ...oldRecord('anna', 5062), source: 'tls:127.0.0.2:40999', transport: 'tls', qValue: 0.5, instance, regId: 2 }),
    'written after the other fields, as JSON.stringify would',
  );
  const back = bindingCodec.decode(JSON.parse(text))!;
  t.same(back, flow, 'a flow binding round-trips');
  t.equal(back.dest, back.source, 'its dest is its connection (the source), not written twice');
  const noQ = binding('anna', 5062, undefined, { instance: 'say "hi"', regId: 1 });
  t.same(bindingCodec.decode(JSON.parse(bindingCodec.json(noQ))), noQ, 'without a q-value; an instance that needs escaping');

  const old = bindingCodec.decode(oldRecord('anna', 5062))!;
  t.notOk('instance' in old || 'regId' in old, 'an old record: no flow, plain RFC 3261');
  t.equal(bindingCodec.json(old), JSON.stringify(oldRecord('anna', 5062)), 'and it is written as before');
  for (const [instanceValue, regIdValue] of [[42, '1'], ['', 0], [null, 1.5], [undefined, -1], [undefined, 2 ** 31]] as const) {
    const d = bindingCodec.decode({ ...oldRecord('anna', 5062), instance: instanceValue, regId: regIdValue });
    t.ok(d && !('instance' in d) && !('regId' in d), `a damaged flow (${String(instanceValue)}, ${String(regIdValue)}) is dropped, the binding kept`);
  }
});

t.test('a flow binding survives a restart, from the journal and from the snapshot', async (t) => {
  const dir = tempDir(t);
  const key = 'anna\nsip:anna@127.0.0.2:5062;transport=tls';
  const source = { transport: 'tls' as const, address: '127.0.0.2', port: 40999 };
  const b = binding('anna', 5062, undefined, { contact: 'sip:anna@127.0.0.2:5062;transport=tls', source, dest: source, instance: '<urn:uuid:a>', regId: 1 });
  const a = new FilePersistence(dir);
  await a.load();
  a.put('binding', key, b);
  await a.close();
  const r = new FilePersistence(dir, { compactAfter: 1 });
  t.same((await r.load()).binding.get(key), b, 'from the journal');
  await r.close();
  const s = new FilePersistence(dir);
  t.same((await s.load()).binding.get(key), b, 'from the snapshot');
  await s.close();
});

t.test('decode: the old string source becomes an Endpoint; damaged records are refused', async (t) => {
  t.same(bindingCodec.decode(oldRecord('anna', 5062, 'tcp')), binding('anna', 5062, undefined, { source: { transport: 'tcp', address: '127.0.0.2', port: 5062 } }));
  t.same(bindingCodec.decode({ ...oldRecord('anna', 1), source: 'udp:::1:5062' })?.source, { transport: 'udp', address: '::1', port: 5062 }, 'IPv6');
  for (const bad of [null, 42, [], { ...oldRecord('a', 1), username: 1 }, { ...oldRecord('a', 1), expiresAt: '1' }, { ...oldRecord('a', 1), source: 'nocolon' }]) {
    t.equal(bindingCodec.decode(bad), undefined, JSON.stringify(bad));
  }
  t.same(callCodec.decode(JSON.parse(JSON.stringify(call))), call);
  t.equal(callCodec.decode({ ...call, parties: [42] }), undefined);
  const probed: ActiveCall = {
    ...call,
    ends: {
      caller: { uri: 'sip:100@10.0.0.5:5062', dest: { transport: 'udp', address: '203.0.113.9', port: 61000 }, from: '<sip:200@pbx>;tag=tt', to: '<sip:100@pbx>;tag=ft', routes: '', cseq: -1 },
      callee: { uri: 'sip:200@127.0.0.2:5080', dest: { transport: 'tcp', address: '127.0.0.2', port: 40312 }, from: '<sip:100@pbx>;tag=ft', to: '<sip:200@pbx>;tag=tt', routes: 'Route: <sip:192.0.2.7;lr>\r\n', cseq: 3 },
    },
    sessionExpires: 90,
  };
  t.same(callCodec.decode(JSON.parse(callCodec.json(probed))), probed, 'a call with its ends and session timer round-trips');
  t.same(callCodec.decode(JSON.parse(JSON.stringify(probed))), probed, 'ends stored as objects (the first version with ends) still decode');
  const v6 = { ...probed, ends: { ...probed.ends!, callee: { ...probed.ends!.callee, dest: { transport: 'tcp' as const, address: '::1', port: 40312 } } } };
  t.same(callCodec.decode(JSON.parse(callCodec.json(v6))), v6, 'an IPv6 flow round-trips');
  const { ends: _e, sessionExpires: _s, ...before11 } = call;
  t.same(callCodec.decode(JSON.parse(JSON.stringify(before11))), call, 'a call stored before the keepalive decodes without ends');
  t.same(callCodec.decode(JSON.parse(JSON.stringify({ ...probed, ends: { caller: probed.ends!.caller, callee: { uri: 'x' } } })))?.ends, null, 'a broken end: no ends, the call is kept');
  t.equal(settingCodec.decode({ busyOnBusy: 'yes' }), undefined);
});

t.test('a binding with an Endpoint source survives a restart', async (t) => {
  const dir = tempDir(t);
  const a = new FilePersistence(dir);
  await a.load();
  const b = binding('anna', 5062, undefined, { qValue: 0.7 });
  a.put('binding', 'anna\nsip:anna@127.0.0.2:5062', b);
  a.put('call', call.id, call);
  a.put('setting', '200', { busyOnBusy: true });
  a.put('setting', '200', { busyOnBusy: false }); // 4 records for 3 values: the next load compacts
  await a.close();
  const line = readFileSync(join(dir, 'state.jsonl'), 'utf8').split('\n')[0]!;
  t.same(JSON.parse(line), { k: 'binding', key: 'anna\nsip:anna@127.0.0.2:5062', v: { ...oldRecord('anna', 5062), qValue: 0.7 } }, 'journal keeps the string form');

  const r = new FilePersistence(dir, { compactAfter: 1 }); // restart, and compact: the snapshot holds the string form too
  const loaded = await r.load();
  t.equal(r.stats.compactions, 1);
  t.same(loaded.binding.get('anna\nsip:anna@127.0.0.2:5062'), b);
  t.same(loaded.call.get(call.id), call);
  t.same(loaded.setting.get('200'), { busyOnBusy: false });
  await r.close();
  const snap = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as { state: Array<[string, Array<[string, { source?: unknown }]>]> };
  t.equal(snap.state.find(([k]) => k === 'binding')![1][0]![1].source, 'udp:127.0.0.2:5062');

  const s = new FilePersistence(dir);
  t.same((await s.load()).binding.get('anna\nsip:anna@127.0.0.2:5062'), b, 'and from the snapshot');
  await s.close();
});

t.test('a data directory of the old format loads', async (t) => {
  const dir = tempDir(t);
  const key = 'anna\nsip:anna@127.0.0.2:5062';
  writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ version: 1, state: [['binding', [[key, oldRecord('anna', 5062)]]], ['setting', [['200', { busyOnBusy: true }]]]] }) + '\n');
  writeFileSync(join(dir, 'state.jsonl'), JSON.stringify({ k: 'binding', key: 'bert\nsip:bert@127.0.0.2:5070', v: oldRecord('bert', 5070, 'tcp') }) + '\n');
  const p = new FilePersistence(dir);
  const loaded = await p.load();
  t.same(loaded.binding.get(key)?.source, { transport: 'udp', address: '127.0.0.2', port: 5062 });
  t.same(loaded.binding.get('bert\nsip:bert@127.0.0.2:5070')?.source, { transport: 'tcp', address: '127.0.0.2', port: 5070 });
  t.same(loaded.setting.get('200'), { busyOnBusy: true });
  await p.close();
});
