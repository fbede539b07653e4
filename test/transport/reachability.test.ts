/** `sipbob check`'s warnings: listeners whose Via/Record-Route phones could not reach (pure). */
import t from 'tap';
import type { InterfaceAddress } from '../../src/transport/interfaces.js';
import { reachabilityWarnings, type ReachabilityInput } from '../../src/transport/reachability.js';
import type { ListenSpec } from '../../src/transport/transport.js';

const lo: InterfaceAddress[] = [
  { address: '127.0.0.1', family: 4, prefix: 8, internal: true },
  { address: '::1', family: 6, prefix: 128, internal: true },
];
const privateHost: InterfaceAddress[] = [...lo, { address: '10.0.0.5', family: 4, prefix: 24, internal: false }, { address: 'fd00::5', family: 6, prefix: 64, internal: false }];
const publicHost: InterfaceAddress[] = [...privateHost, { address: '203.0.113.10', family: 4, prefix: 24, internal: false }];
const v6PublicOnly: InterfaceAddress[] = [...privateHost, { address: '2001:db8::10', family: 6, prefix: 64, internal: false }];

function listen(...urls: string[]): ListenSpec[] {
  return urls.map((url) => {
    const [transport, rest] = url.split('://') as ['udp' | 'tcp', string];
    const colon = rest.lastIndexOf(':');
    return { transport, host: rest.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(rest.slice(colon + 1)), url };
  });
}

const cfg = (over: Partial<ReachabilityInput>): ReachabilityInput => ({ domain: 'pbx.example.com', listen: listen('udp://0.0.0.0:5060'), ...over });
const keys = (c: ReachabilityInput, i: InterfaceAddress[]) => reachabilityWarnings(c, i).map((w) => w.key);

t.test('0.0.0.0 without advertise: a warning unless the host has a public address of the family', async (t) => {
  const [w] = reachabilityWarnings(cfg({}), privateHost);
  t.equal(w?.key, 'listen[0]');
  t.match(w?.message, /udp:\/\/0\.0\.0\.0:5060 without advertise: this host's addresses are private \(10\.0\.0\.5\)/);
  t.match(w?.message, /set advertise/);
  t.same(keys(cfg({}), publicHost), [], 'a public IPv4 address: Via names it for phones that come that way');
  t.same(keys(cfg({}), v6PublicOnly), ['listen[0]'], '0.0.0.0 serves IPv4 only: a public IPv6 address does not help');
  t.same(keys(cfg({ listen: listen('tcp://[::]:5060') }), v6PublicOnly), [], ':: serves both families');
  const [only] = reachabilityWarnings(cfg({}), lo);
  t.match(only?.message, /only loopback addresses \(127\.0\.0\.1\), so only this host can reach it/);
  t.same(keys(cfg({ domain: 'localhost' }), lo), [], 'a localhost domain: loopback is what is meant');
});

t.test('advertise wins: no listener warning; a loopback or unspecified advertise is one', async (t) => {
  t.same(keys(cfg({ advertise: '198.51.100.7' }), privateHost), []);
  t.same(keys(cfg({ advertise: 'sip.example.com' }), lo), [], 'a name: trusted');
  t.same(keys(cfg({ advertise: '127.0.0.1' }), publicHost), ['advertise']);
  t.same(keys(cfg({ advertise: '127.0.0.1', domain: '127.0.0.1' }), publicHost), [], 'a loopback domain too');
  t.same(keys(cfg({ advertise: '0.0.0.0' }), publicHost), ['advertise']);
});

t.test('specific listeners: loopback with a real domain, an address this host does not have, a private one', async (t) => {
  const c = cfg({ listen: listen('udp://127.0.0.1:5060', 'tcp://203.0.113.10:5060', 'udp://10.0.0.5:5060', 'udp://198.51.100.99:5060', 'udp://sip.example.com:5060') });
  const ws = reachabilityWarnings(c, publicHost);
  t.same(ws.map((w) => w.key), ['listen[0]', 'listen[2]', 'listen[3]'], 'the public interface address and the host name are fine');
  t.match(ws[0]!.message, /loopback address: only this host can reach it, yet the domain is pbx\.example\.com/);
  t.match(ws[1]!.message, /10\.0\.0\.5:5060 is a private address and advertise is not set/);
  t.match(ws[2]!.message, /198\.51\.100\.99 is not an address of this host: binding it will fail here/);
  t.same(keys(cfg({ domain: 'pbx.localhost', listen: listen('udp://127.0.0.1:5060') }), publicHost), [], 'a *.localhost domain on loopback');
});
