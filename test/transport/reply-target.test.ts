import t from 'tap';
import { parseVia, type Via } from '../../src/sip/headers.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import { replyTarget, responseTarget } from '../../src/transport/reply-target.js';

function via(s: string): Via {
  const v = parseVia(s);
  if (!v) throw new Error(`bad Via in test: ${s}`);
  return v;
}

const udpSource: Endpoint = { transport: 'udp', address: '192.0.2.7', port: 40000 };
const tcpSource: Endpoint = { transport: 'tcp', address: '192.0.2.7', port: 40001 };

t.test('replyTarget: a stream request is answered on its connection, whatever its Via says', async (t) => {
  t.equal(replyTarget(via('SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1'), tcpSource), tcpSource);
  t.equal(replyTarget(via('SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1;rport'), tcpSource), tcpSource);
});

t.test('replyTarget: UDP with rport answers the source port at the source address (RFC 3581)', async (t) => {
  t.equal(replyTarget(via('SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport'), udpSource), udpSource, 'flag: the source itself');
  t.equal(replyTarget(via('SIP/2.0/UDP 10.0.0.1:5070;rport=1234;branch=z9hG4bK1'), udpSource), udpSource, 'valued rport: still the source port');
});

t.test('replyTarget: UDP without rport answers the Via port at the source address (§18.2.2 received)', async (t) => {
  t.same(replyTarget(via('SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1'), udpSource), { transport: 'udp', address: '192.0.2.7', port: 5070 });
  t.same(replyTarget(via('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1'), udpSource), { transport: 'udp', address: '192.0.2.7', port: 5060 }, 'no port: 5060');
  const same: Endpoint = { transport: 'udp', address: '192.0.2.7', port: 5060 };
  t.equal(replyTarget(via('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1'), same), same, 'same port: the source itself, no copy');
});

t.test('replyTarget: a Via naming another transport than the arriving one: the source itself, over the arriving transport', async (t) => {
  t.equal(replyTarget(via('SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234'), udpSource), udpSource, 'RFC 4475 novelsc over UDP: not port 5060 at the source address');
  t.equal(replyTarget(via('SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1'), udpSource), udpSource, 'TCP Via with a port, over UDP');
  t.equal(replyTarget(via('SIP/2.0/SCTP 10.0.0.1:5070;branch=z9hG4bK1'), udpSource), udpSource, 'a transport we do not speak');
  t.equal(replyTarget(via('SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1'), tcpSource), tcpSource, 'UDP Via over TCP: the connection');
});

t.test('replyTarget keeps the listener the request reached', async (t) => {
  const local = { transport: 'udp' as const, host: '192.0.2.2', port: 5060 };
  const source: Endpoint = { ...udpSource, local };
  t.equal(replyTarget(via('SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1'), source).local, local, 'Via port: a new endpoint, same listener');
  t.equal(replyTarget(via('SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport'), source), source);
});

t.test('responseTarget: received and rport of the next Via win over its host and port', async (t) => {
  t.same(responseTarget(via('SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport=40000;received=192.0.2.7')), {
    transport: 'udp',
    address: '192.0.2.7',
    port: 40000,
  });
  t.same(responseTarget(via('SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport')), { transport: 'udp', address: '10.0.0.1', port: 5070 }, 'rport flag: the Via port');
  t.same(responseTarget(via('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1')), { transport: 'udp', address: '10.0.0.1', port: 5060 }, 'no port: 5060');
  t.same(responseTarget(via('SIP/2.0/UDP [2001:db8::1]:5080;branch=z9hG4bK1')), { transport: 'udp', address: '2001:db8::1', port: 5080 }, 'IPv6');
});

t.test('responseTarget: the transport is the one the Via token names, UDP when we do not speak it', async (t) => {
  t.equal(responseTarget(via('SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1')).transport, 'tcp');
  t.equal(responseTarget(via('SIP/2.0/tcp 10.0.0.1:5070;branch=z9hG4bK1')).transport, 'tcp', 'token case does not matter');
  t.equal(responseTarget(via('SIP/2.0/SCTP 10.0.0.1:5070;branch=z9hG4bK1')).transport, 'udp');
});
