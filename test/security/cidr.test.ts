/** CIDR matching (security/cidr.ts): IPv4, IPv6, IPv4-mapped IPv6, edges of prefixes. */
import t from 'tap';
import { canonicalAddress, CidrSet, parseAddress } from '../../src/security/cidr.js';

const set = (...specs: string[]) =>
  new CidrSet(
    specs.map((s) => {
      const [address, prefix] = s.split('/');
      return { address: address!, prefix: prefix === undefined ? (address!.includes(':') ? 128 : 32) : Number(prefix) };
    }),
  );

t.test('IPv4 networks', async (t) => {
  const s = set('10.0.0.0/8', '192.168.1.0/24', '203.0.113.7');
  t.ok(s.has('10.0.0.1'));
  t.ok(s.has('10.255.255.255'));
  t.notOk(s.has('11.0.0.0'));
  t.ok(s.has('192.168.1.200'));
  t.notOk(s.has('192.168.2.1'), 'just outside the /24');
  t.ok(s.has('203.0.113.7'), 'a bare address is a /32');
  t.notOk(s.has('203.0.113.8'));
  t.ok(set('0.0.0.0/0').has('198.51.100.1'), '/0 holds everything of its family');
  t.notOk(set('0.0.0.0/0').has('2001:db8::1'), 'but not the other family');
  t.ok(set('127.0.0.64/26').has('127.0.0.70'));
  t.notOk(set('127.0.0.64/26').has('127.0.0.63'));
  t.notOk(set('127.0.0.64/26').has('127.0.0.128'));
  t.ok(set('10.1.2.3/8').has('10.9.9.9'), 'host bits in the network are ignored');
});

t.test('IPv6 networks', async (t) => {
  const s = set('2001:db8::/32', 'fe80::/10', '::1');
  t.ok(s.has('2001:db8::1'));
  t.ok(s.has('2001:DB8:ffff:ffff:ffff:ffff:ffff:ffff'), 'upper case hex');
  t.notOk(s.has('2001:db9::1'));
  t.ok(s.has('fe80::1%eth0'), 'a zone is ignored');
  t.ok(s.has('febf::1'), 'inside the /10');
  t.notOk(s.has('fec0::1'), 'outside the /10');
  t.ok(s.has('::1'));
  t.ok(s.has('0:0:0:0:0:0:0:1'), 'the long spelling of ::1');
  t.notOk(s.has('::2'));
  t.ok(set('2001:db8:0:0:1::/80').has('2001:db8::1:0:5:6'), 'a prefix across a 32-bit word boundary');
  t.notOk(set('2001:db8:0:0:1::/80').has('2001:db8::2:0:5:6'));
  t.ok(set('2001:db8::/127').has('2001:db8::1'));
  t.notOk(set('2001:db8::/127').has('2001:db8::2'));
});

t.test('IPv4-mapped IPv6 is the IPv4 host', async (t) => {
  t.ok(set('10.0.0.0/8').has('::ffff:10.1.2.3'), 'a dual-stack socket\'s spelling of an IPv4 peer');
  t.ok(set('::ffff:10.0.0.0/104').has('10.2.3.4'), 'a mapped network written in the config');
  t.notOk(set('::ffff:10.0.0.0/104').has('11.2.3.4'));
  t.equal(canonicalAddress('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(canonicalAddress('FE80::1%eth0'), 'fe80::1');
  t.equal(canonicalAddress('192.0.2.1'), '192.0.2.1');
});

t.test('what is no address matches nothing and never throws', async (t) => {
  const s = set('0.0.0.0/0', '::/0');
  for (const junk of ['', 'localhost', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', '::g', '1:2:3:4:5:6:7:8:9', '1::2::3', ':::', '12345::']) {
    t.notOk(s.has(junk), JSON.stringify(junk));
    t.equal(parseAddress(junk), undefined, `${JSON.stringify(junk)} does not parse`);
  }
  t.ok(s.has('::'), 'the unspecified address is an address');
  t.throws(() => set('nonsense/8'), 'a bad network in the settings is a programming error');
  t.throws(() => set('10.0.0.0/33'));
});
