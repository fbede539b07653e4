import t from 'tap';
import { endpointKey, formatEndpoint, parseEndpoint, type Endpoint } from '../../src/transport/endpoint.js';
import { TRANSPORTS, transportByName, transportByViaToken, transportOfUriParam, viaToken } from '../../src/transport/names.js';

t.test('formatEndpoint writes transport:address:port, IPv6 unbracketed', async (t) => {
  t.equal(formatEndpoint({ transport: 'udp', address: '192.0.2.7', port: 5060 }), 'udp:192.0.2.7:5060');
  t.equal(formatEndpoint({ transport: 'tcp', address: '2001:db8::1', port: 40000 }), 'tcp:2001:db8::1:40000');
});

t.test('parseEndpoint reads formatEndpoint back', async (t) => {
  const cases: Endpoint[] = [
    { transport: 'udp', address: '192.0.2.7', port: 5060 },
    { transport: 'tcp', address: '192.0.2.7', port: 65535 },
    { transport: 'tcp', address: '::1', port: 5060 },
    { transport: 'udp', address: '2001:db8::1', port: 1 },
  ];
  for (const e of cases) t.same(parseEndpoint(formatEndpoint(e)), e, formatEndpoint(e));
});

t.test('parseEndpoint refuses what formatEndpoint never writes', async (t) => {
  for (const s of [
    '',
    'udp',
    'udp:192.0.2.7',
    ':192.0.2.7:5060',
    'udp::5060',
    'udp:192.0.2.7:',
    'udp:192.0.2.7:65536',
    'udp:192.0.2.7:1234567',
    'udp:192.0.2.7:50x0',
    'udp:192.0.2.7:-1',
    'udp:192.0.2.7: 5060',
    'sctp:192.0.2.7:5060',
    'UDP:192.0.2.7:5060',
    'constructor:192.0.2.7:5060',
  ]) {
    t.equal(parseEndpoint(s), undefined, JSON.stringify(s));
  }
});

t.test('endpointKey tells endpoints apart by transport, address and port', async (t) => {
  const a: Endpoint = { transport: 'tcp', address: '192.0.2.7', port: 5060 };
  t.equal(endpointKey(a), endpointKey({ ...a }));
  t.not(endpointKey(a), endpointKey({ ...a, transport: 'udp' }));
  t.not(endpointKey(a), endpointKey({ ...a, address: '192.0.2.8' }));
  t.not(endpointKey(a), endpointKey({ ...a, port: 5061 }));
});

t.test('one table maps name, Via token and URI parameter to the transport', async (t) => {
  t.equal(transportByName('udp'), TRANSPORTS.udp);
  t.equal(transportByName('tcp'), TRANSPORTS.tcp);
  t.equal(transportByName('TCP'), undefined, 'names are lower case');
  t.equal(transportByName('constructor'), undefined, 'no inherited property');
  t.equal(transportByViaToken('UDP'), TRANSPORTS.udp);
  t.equal(transportByViaToken('TCP'), TRANSPORTS.tcp);
  t.equal(transportByViaToken('TLS'), TRANSPORTS.tls);
  t.equal(transportByViaToken('WSX'), undefined);
  t.equal(TRANSPORTS.tls.reliable, true);
  t.equal(transportOfUriParam('tls'), 'tls');
  t.equal(transportOfUriParam(undefined, true), 'tls', 'sips: goes over TLS');
  t.equal(transportOfUriParam('tcp', true), 'tls', 'sips: with transport=tcp is TLS over TCP');
  t.equal(viaToken('udp'), 'UDP');
  t.equal(viaToken('tcp'), 'TCP');
  t.equal(TRANSPORTS.udp.reliable, false);
  t.equal(TRANSPORTS.tcp.reliable, true);
  t.equal(transportOfUriParam(undefined), 'udp', 'absent: UDP');
  t.equal(transportOfUriParam('tcp'), 'tcp');
  t.equal(transportOfUriParam('TcP'), 'tcp', 'any case');
  t.equal(transportOfUriParam('udp'), 'udp');
  t.equal(transportOfUriParam(''), 'udp');
  t.equal(transportOfUriParam('sctp'), 'udp', 'one we do not speak: UDP');
  t.equal(transportOfUriParam('__proto__'), 'udp');
});
