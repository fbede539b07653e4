/** Address kinds, networks, interface listing and the choice of our address per destination: pure. */
import t from 'tap';
import { addressGroups, addressScope, inNetwork, ipv4Number, isLoopbackAddress, isWildcard } from '../../src/transport/addresses.js';
import { interfaceAddresses, wildcardAddresses } from '../../src/transport/interfaces.js';
import { LocalChoice, type Candidate } from '../../src/transport/local-choice.js';

t.test('ipv4Number and addressGroups read IP literals and nothing else', async (t) => {
  t.equal(ipv4Number('192.0.2.1'), 0xc0000201);
  t.equal(ipv4Number('255.255.255.255'), 0xffffffff);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.', ' 1.2.3.4', '1.2.3.4a', '1234.1.1.1', 'example.com']) {
    t.equal(ipv4Number(bad), -1, JSON.stringify(bad));
  }
  t.same(addressGroups('10.1.2.3'), [0x0a01, 0x0203]);
  t.same(addressGroups('::1'), [0, 0, 0, 0, 0, 0, 0, 1]);
  t.same(addressGroups('::'), [0, 0, 0, 0, 0, 0, 0, 0]);
  t.same(addressGroups('2001:DB8::5'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 5], 'upper case hex');
  t.same(addressGroups('fe80::1%eth0'), [0xfe80, 0, 0, 0, 0, 0, 0, 1], 'a zone is ignored');
  t.same(addressGroups('::ffff:192.168.1.20'), [0, 0, 0, 0, 0, 0xffff, 0xc0a8, 0x0114], 'IPv4 tail');
  t.same(addressGroups('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8]);
  for (const bad of ['1::2::3', ':1', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1.2.3.4::', '[::1]', 'a:b:c:d:e:f:1.2.3.4.5', '1:2:3:4:5:6:7::8']) {
    t.equal(addressGroups(bad), undefined, JSON.stringify(bad));
  }
});

t.test('addressScope: RFC 1918, RFC 6598 and ULA are private; loopback, link-local, public', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['192.168.1.20', 'private'],
    ['192.169.0.1', 'public'],
    ['100.64.0.1', 'private'],
    ['100.127.255.254', 'private'],
    ['100.128.0.1', 'public'],
    ['100.63.255.255', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.9.9.9', 'loopback'],
    ['169.254.10.1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['192.0.2.2', 'public'],
    ['203.0.113.10', 'public'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fd00::2', 'private'],
    ['fc00::1', 'private'],
    ['fe80::1', 'link-local'],
    ['2001:db8::1', 'public'],
    ['::ffff:10.1.1.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['phone.example.com', undefined],
    ['', undefined],
  ];
  for (const [a, scope] of cases) t.equal(addressScope(a), scope, a);
  t.ok(isLoopbackAddress('127.0.0.5'));
  t.ok(isLoopbackAddress('::1'));
  t.notOk(isLoopbackAddress('127.0.0.5.1'));
  t.notOk(isLoopbackAddress('127.example.com'));
  t.notOk(isLoopbackAddress('10.0.0.1'));
  t.ok(isWildcard('0.0.0.0') && isWildcard('::') && !isWildcard('127.0.0.1'));
});

t.test('inNetwork: prefix bits, both families, never across families', async (t) => {
  const g = (s: string) => addressGroups(s)!;
  t.ok(inNetwork(g('192.0.2.77'), g('192.0.2.2'), 24));
  t.notOk(inNetwork(g('192.0.3.77'), g('192.0.2.2'), 24));
  t.ok(inNetwork(g('10.200.1.1'), g('10.0.0.5'), 8));
  t.ok(inNetwork(g('172.20.0.1'), g('172.16.0.1'), 12));
  t.notOk(inNetwork(g('172.32.0.1'), g('172.16.0.1'), 12));
  t.ok(inNetwork(g('fd00::99'), g('fd00::2'), 64));
  t.notOk(inNetwork(g('fd01::99'), g('fd00::2'), 64));
  t.ok(inNetwork(g('1.2.3.4'), g('9.9.9.9'), 0), 'prefix 0 holds everything');
  t.notOk(inNetwork(g('::ffff:1.2.3.4'), g('1.2.3.4'), 32), 'an IPv6 address is not in an IPv4 network');
});

t.test('interfaceAddresses: every address once with its prefix, IPv6 link-local left out', async (t) => {
  const list = interfaceAddresses({
    lo: [
      { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
      { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
    ],
    eth0: [
      { address: '192.0.2.2', netmask: '255.255.255.0', family: 'IPv4', mac: '02:fc:00:00:00:01', internal: false, cidr: '192.0.2.2/24' },
      { address: 'fd00::2', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:fc:00:00:00:01', internal: false, cidr: 'fd00::2/64', scopeid: 0 },
      { address: 'fe80::fc:ff:fe00:1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:fc:00:00:00:01', internal: false, cidr: 'fe80::fc:ff:fe00:1/64', scopeid: 4 },
    ],
    down: undefined,
    vip: [{ address: '192.0.2.2', netmask: '255.255.255.255', family: 'IPv4', mac: '02:fc:00:00:00:02', internal: false, cidr: '192.0.2.2/32' }],
  });
  t.same(list, [
    { address: '127.0.0.1', family: 4, prefix: 8, internal: true },
    { address: '::1', family: 6, prefix: 128, internal: true },
    { address: '192.0.2.2', family: 4, prefix: 24, internal: false },
    { address: 'fd00::2', family: 6, prefix: 64, internal: false },
  ]);
  t.same(wildcardAddresses('0.0.0.0', list).map((a) => a.address), ['127.0.0.1', '192.0.2.2'], '0.0.0.0: IPv4 only');
  t.same(wildcardAddresses('::', list).map((a) => a.address), ['127.0.0.1', '::1', '192.0.2.2', 'fd00::2'], ':: both families (dual-stack)');
});

interface L extends Candidate {
  name: string;
}

t.test('LocalChoice: own address, loopback, on-link network, default route, first non-loopback', async (t) => {
  const lo: L = { name: 'lo', bind: '127.0.0.1', prefix: 8 };
  const lan: L = { name: 'lan', bind: '10.0.0.5', prefix: 24 };
  const wan: L = { name: 'wan', bind: '203.0.113.5', prefix: 28 };
  const v6: L = { name: 'v6', bind: 'fd00::2', prefix: 64 };
  const v6lo: L = { name: 'v6lo', bind: '::1', prefix: 128 };
  const c = new LocalChoice([lo, lan, wan, v6lo, v6]);
  const pick = (a: string) => c.choose(a)?.name;
  t.equal(pick('10.0.0.5'), 'lan', 'one of our own addresses: that one');
  t.equal(pick('127.0.0.11'), 'lo', 'loopback: our loopback address');
  t.equal(pick('10.0.0.77'), 'lan', 'on the LAN');
  t.equal(pick('203.0.113.9'), 'wan', 'on the WAN network');
  t.equal(pick('198.51.100.7'), 'lan', 'off every network, no default route known: the first that is not loopback');
  t.equal(pick('fd00::99'), 'v6');
  t.equal(pick('::1'), 'v6lo');
  t.equal(pick('2001:db8::1'), 'v6', 'IPv6 off-link: the first non-loopback IPv6');
  t.equal(pick('not-an-ip'), 'lan', 'not an address: the default');

  const preferred = new LocalChoice([lo, lan, { ...wan, preferred: true }]);
  t.equal(preferred.choose('198.51.100.7')?.name, 'wan', 'off-link: where the default route leaves');
  t.equal(preferred.choose('10.0.0.77')?.name, 'lan', 'on-link still wins');
  const bareLo: L = { name: 'bare-lo', bind: '127.0.0.1' };
  t.equal(new LocalChoice([{ ...wan, preferred: true }, bareLo]).choose('127.0.0.11')?.name, 'bare-lo', 'loopback without a known network: still our loopback address');

  t.equal(new LocalChoice([lo]).choose('2001:db8::1'), undefined, 'no listener of the family');
  t.equal(new LocalChoice([lo]).choose('198.51.100.7')?.name, 'lo', 'one listener of the family: always it');
  const dual: L = { name: 'dual', bind: '::' };
  t.equal(new LocalChoice([dual]).choose('192.0.2.1')?.name, 'dual', 'a :: socket sends to IPv4 too');
  t.equal(new LocalChoice([lo, dual]).choose('198.51.100.7')?.name, 'dual', 'a :: socket is not loopback');
});
