import t from 'tap';
import { activeCallJson, branchesJson, jsonString, partiesJson } from '../../src/lib/json-text.js';
import type { ActiveCall } from '../../src/calls/active-call.js';

t.test('jsonString writes what JSON.stringify writes', async (t) => {
  const samples = [
    '', 'a', '443-1173@127.0.0.61', 'c1@"quoted"\\', 'tab\there', 'nl\nx', '\u0000', '\u001f', '\u007f', 'ü', 'Grüße',
    '\u2028\u2029', '😀', '\ud83d', 'x\ude00y', 'a"b', 'back\\slash', '</script>',
  ];
  // Messages name the sample by its code units: a raw U+2028 in a test name would break the TAP stream.
  const name = (s: string) => [...s].map((c) => c.charCodeAt(0).toString(16)).join(' ');
  for (const s of samples) t.equal(jsonString(s), JSON.stringify(s), name(s));
  // Every code unit, alone and between ordinary characters.
  let bad = 0;
  for (let c = 0; c < 0x10000; c++) {
    const s = `ab${String.fromCharCode(c)}cd`;
    if (jsonString(s) !== JSON.stringify(s) && bad++ < 5) t.fail(`code unit ${c.toString(16)}`);
  }
  t.equal(bad, 0, 'all 65,536 code units');
});

t.test('record writers match JSON.stringify of the same objects', async (t) => {
  const call: ActiveCall = {
    id: 'c1@h;"t1";t2',
    callId: 'c1@h',
    fromTag: '"t1"',
    toTag: 't2',
    parties: [
      { extension: '200', device: 'anna-desk', direction: 'inbound' },
      { extension: '100', device: 'Jürgen\\', direction: 'outbound' },
    ],
    startedAt: 1795874119433,
    expiresAt: 1795888519433,
    ends: {
      caller: { uri: 'sip:100@192.0.2.1:5062', dest: { transport: 'udp', address: '203.0.113.9', port: 61000 }, from: '<sip:200@pbx>;tag=t2', to: '"Jürgen" <sip:100@pbx>;tag="t1"', routes: '', cseq: -1 },
      callee: { uri: 'sip:200@[::1]:5080;transport=tcp', dest: { transport: 'tcp', address: '::1', port: 40312 }, from: '"Jürgen" <sip:100@pbx>;tag="t1"', to: '<sip:200@pbx>;tag=t2', routes: 'Route: <sip:192.0.2.7;lr>\r\n', cseq: 4 },
    },
    sessionExpires: 1800,
  };
  const c = call.ends!;
  const storedEnds = {
    from: c.callee.from,
    to: c.callee.to,
    caller: { uri: c.caller.uri, flow: 'udp:203.0.113.9:61000', routes: '', cseq: -1 },
    callee: { uri: c.callee.uri, flow: 'tcp:::1:40312', routes: c.callee.routes, cseq: 4 },
  };
  t.equal(activeCallJson(call), JSON.stringify({ ...call, ends: storedEnds }), 'ends in their stored form: From and To once, flows as text');
  t.equal(activeCallJson({ ...call, ends: null, sessionExpires: 0 }), JSON.stringify({ ...call, ends: null, sessionExpires: 0 }), 'a call without ends');
  t.equal(activeCallJson({ ...call, ends: null, parties: [] }), JSON.stringify({ ...call, ends: null, parties: [] }));
  t.equal(partiesJson(call.parties), JSON.stringify(call.parties));
  const branches = [
    { device: 'desk', status: 200, cancelled: false },
    { device: 'soft"x', status: 0, cancelled: true },
  ];
  t.equal(branchesJson(branches), JSON.stringify(branches));
  t.equal(branchesJson([]), '[]');
});
