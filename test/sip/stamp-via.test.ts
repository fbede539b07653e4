/**
 * stampVia (RFC 3581 §4, RFC 3261 §18.2.1): received and rport filled into the top Via. It
 * replaced a regex; the last test compares both over generated Via values.
 */
import t from 'tap';
import { parseVia, type Via } from '../../src/sip/headers.js';
import { stampVia } from '../../src/sip/stamp-via.js';

const stamp = (value: string, address = '192.0.2.10', port = 40000, datagram = true): string | undefined => {
  const via = parseVia(value);
  if (!via) throw new Error(`test Via does not parse: ${value}`);
  return stampVia(value, via, address, port, datagram);
};

t.test('rport is filled in only over a datagram transport, and only when asked for', async (t) => {
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport'), 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=40000');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK-1'), 'SIP/2.0/UDP 192.0.2.10:5060;rport=40000;branch=z9hG4bK-1', 'in the middle');
  t.equal(stamp('SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-1;rport', '192.0.2.10', 40000, false), undefined, 'not over TCP (same host: nothing at all)');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1'), undefined, 'not asked for');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=5060'), undefined, 'an rport with a value is not replaced');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=5060', '192.0.2.99'), 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=5060;received=192.0.2.99', '... though received may be added');
});

t.test('the spellings of an rport flag', async (t) => {
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1; rport'), 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=40000', '"; rport" with a space: the space goes');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;\trport;x=1'), 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=40000;x=1', 'a tab');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;RPORT'), 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=40000', 'RPORT in upper case');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport ;x=1'), 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport=40000 ;x=1', 'a space after it is kept');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;x=rport;rport'), 'SIP/2.0/UDP 192.0.2.10:5060;x=rport;rport=40000', 'not a value that reads "rport"');
  t.equal(stamp('SIP/2.0/UDP 192.0.2.10:5060;rportx=1;rport'), 'SIP/2.0/UDP 192.0.2.10:5060;rportx=1;rport=40000', 'not a longer name');
});

t.test('received is added when the sent-by host is not the source, once', async (t) => {
  t.equal(stamp('SIP/2.0/UDP phone.local:5070;branch=z9hG4bK-1'), 'SIP/2.0/UDP phone.local:5070;branch=z9hG4bK-1;received=192.0.2.10');
  t.equal(stamp('SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bK-1;rport'), 'SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bK-1;rport=40000;received=192.0.2.10', 'rport and received');
  t.equal(stamp('SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bK-1;received=192.0.2.10'), 'SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bK-1;received=192.0.2.10', 'not twice');
  t.equal(stamp('SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bK-1;received=192.0.2.77'), 'SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bK-1;received=192.0.2.77', 'an existing received is left as it is');
  t.equal(stamp('SIP/2.0/TCP phone.local;branch=z9hG4bK-1;rport', '192.0.2.10', 40000, false), 'SIP/2.0/TCP phone.local;branch=z9hG4bK-1;rport;received=192.0.2.10', 'TCP: received, not rport');
  t.equal(stamp('SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-1', '2001:db8::1'), undefined, 'IPv6 sent-by compared without brackets');
  t.equal(stamp('SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-1', '2001:db8::2'), 'SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-1;received=2001:db8::2');
});

/** The implementation stampVia replaced (src/proxy/proxy.ts at 774b3cb). */
function previous(value: string, via: Via, address: string, port: number, datagram: boolean): string | undefined {
  const needReceived = via.host !== address;
  const needRport = via.rport === '' && datagram;
  if (!needReceived && !needRport) return undefined;
  let v = value;
  if (needRport) v = v.replace(/;\s*rport(?=;|$|\s)/i, `;rport=${port}`);
  if (needReceived && via.received === undefined) v += `;received=${address}`;
  return v;
}

t.test('the same as the regex it replaced, over generated Via values', async (t) => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const hosts = ['192.0.2.10', '192.0.2.11', 'phone.local', '[2001:db8::1]', 'PBX.Example'];
  const params = [
    ';branch=z9hG4bK-a1',
    ';rport',
    '; rport',
    ';  rport',
    ';\trport',
    ';RPORT',
    ';RPort',
    ';rport=5060',
    ';rport ',
    ';rportx',
    ';xrport',
    ';x=rport',
    ';received=192.0.2.10',
    ';received=10.9.9.9',
    ';ttl=5',
    ';maddr=192.0.2.1',
    ';lr',
    ' ;rport',
    ';rport;rport',
  ];
  let compared = 0;
  let stamped = 0;
  const differ: string[] = [];
  for (let i = 0; i < 600; i++) {
    let v = `SIP/2.0/${rnd(3) === 0 ? 'TCP' : 'UDP'} ${hosts[rnd(hosts.length)]}${rnd(2) ? ':5060' : ''}`;
    for (let k = rnd(5); k > 0; k--) v += params[rnd(params.length)];
    const via = parseVia(v);
    if (!via) continue;
    const address = ['192.0.2.10', '2001:db8::1', '198.51.100.1'][rnd(3)]!;
    const port = 1024 + rnd(60000);
    const datagram = rnd(4) !== 0;
    const now = stampVia(v, via, address, port, datagram);
    const before = previous(v, via, address, port, datagram);
    compared++;
    if (now !== undefined) stamped++;
    if (now !== before) differ.push(`${JSON.stringify(v)} from ${address}:${port}: ${JSON.stringify(now)} vs ${JSON.stringify(before)}`);
  }
  t.ok(compared > 400, `${compared} Via values compared`);
  t.ok(stamped > 100, `${stamped} of them stamped`);
  t.same(differ, [], 'the same result for each');
});
