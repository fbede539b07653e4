/**
 * http.trustProxy: ProxyTrust says which addresses are trusted reverse proxies; fastify (with
 * ProxyTrust's function as its trustProxy) picks the client from X-Forwarded-For. Checked on
 * the function alone and through fastify's request.ip with injected peers and headers.
 */
import t from 'tap';
import Fastify from 'fastify';
import type { Cidr } from '../../src/config/types.js';
import { clientFields, ProxyTrust } from '../../src/http/trust-proxy.js';

function cidr(text: string): Cidr {
  const [address, bits] = text.split('/');
  return { address: address!, prefix: bits === undefined ? (address!.includes(':') ? 128 : 32) : Number(bits), text };
}

t.test('which addresses are trusted proxies', async (t) => {
  const trust = new ProxyTrust(['10.0.0.0/8', '192.0.2.7', '2001:db8:1::/48'].map(cidr));
  const cases: Array<[string, boolean]> = [
    ['10.0.0.1', true],
    ['10.255.255.255', true],
    ['11.0.0.1', false],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['::ffff:10.1.2.3', true], // a dual-stack listener reports IPv4 peers this way
    ['::ffff:192.0.2.7', true],
    ['2001:db8:1:ffff::1', true],
    ['2001:db8:2::1', false],
    ['::1', false],
    ['', false],
    ['unknown', false],
    ['10.0.0.1:8080', false], // not an address: never trusted
    ['10.0.0.1 ', false],
  ];
  for (const [address, trusted] of cases) t.equal(trust.trusts(address, 0), trusted, `${JSON.stringify(address)} ${trusted ? 'trusted' : 'not trusted'}`);

  t.equal(new ProxyTrust().trusts('10.0.0.1', 0), false, 'no list: nobody is trusted');
  trust.set([]);
  t.equal(trust.trusts('10.0.0.1', 0), false, 'set([]) trusts nobody');
  trust.set([cidr('127.0.14.0/24')]);
  t.equal(trust.trusts('127.0.14.9', 0), true, 'set() replaces the list');
  t.equal(trust.trusts('10.0.0.1', 0), false, '...the old networks are gone');
});

t.test("the client address fastify derives with ProxyTrust's function", async (t) => {
  const trust = new ProxyTrust(['10.0.0.0/8', '192.0.2.7'].map(cidr));
  const app = Fastify({ trustProxy: trust.trusts });
  app.get('/ip', async (req) => ({ ip: req.ip, fields: clientFields(req) }));
  t.teardown(() => app.close());
  const ip = async (remoteAddress: string, xff?: string) => {
    const res = await app.inject({ url: '/ip', remoteAddress, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });
    return res.json() as { ip: string; fields: { ip: string; proxy?: string } };
  };

  t.equal((await ip('198.51.100.1', '203.0.113.5')).ip, '198.51.100.1', 'an untrusted peer: its X-Forwarded-For is ignored');
  t.equal((await ip('10.0.0.1', '203.0.113.5')).ip, '203.0.113.5', 'a trusted proxy: the address it forwards');
  t.equal((await ip('10.0.0.1', '6.6.6.6, 203.0.113.5')).ip, '203.0.113.5', 'what the client wrote itself (left) is not believed');
  t.equal((await ip('10.0.0.1', '203.0.113.5, 192.0.2.7')).ip, '203.0.113.5', 'a chain of trusted proxies: the right-most address that is not one');
  t.equal((await ip('10.0.0.1', '203.0.113.5,10.9.9.9')).ip, '203.0.113.5', 'without spaces too');
  t.equal((await ip('10.0.0.1')).ip, '10.0.0.1', 'a trusted proxy that forwards nothing: the proxy itself');
  t.equal((await ip('::ffff:10.0.0.1', '203.0.113.5')).ip, '203.0.113.5', 'a trusted proxy seen as an IPv4-mapped IPv6 peer');

  t.same((await ip('10.0.0.1', '203.0.113.5')).fields, { ip: '203.0.113.5', proxy: '10.0.0.1' }, 'log fields: the client and the proxy');
  t.same((await ip('198.51.100.1', '203.0.113.5')).fields, { ip: '198.51.100.1' }, 'log fields: a direct client only');

  trust.set([]);
  t.equal((await ip('10.0.0.1', '203.0.113.5')).ip, '10.0.0.1', 'after a reload without the proxy: X-Forwarded-For is ignored');
});
