import t from 'tap';
import { NatKeepalive } from '../../src/registrar/nat-keepalive.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import { binding } from '../location/fixtures.js';

t.test('CRLFCRLF to UDP contacts without outbound, every interval seconds; off at 0', async (t) => {
  const T0 = 1_700_000_000_000;
  const udp = binding('anna', 5062, T0 + 600_000);
  const outbound = { ...binding('anna', 5064, T0 + 600_000), instance: '<urn:uuid:1>', regId: 1 };
  const tcpSrc: Endpoint = { transport: 'tcp', address: '127.0.0.2', port: 40000 };
  const tcp = binding('bob', 5066, T0 + 600_000, { source: tcpSrc, dest: tcpSrc });
  const expired = binding('carl', 5068, T0 - 1);
  const remote = binding('dora', 5070, T0 + 600_000, { owner: 'sip-b', path: { transport: 'udp', address: '127.0.3.2', port: 5060 } });
  const sent: Array<[string, string]> = [];
  let every = 20;
  const ka = new NatKeepalive(
    () => [udp, outbound, tcp, expired, remote],
    (dest, data) => sent.push([`${dest.transport}:${dest.port}`, data.toString()]),
    () => every,
  );
  t.equal(ka.maybeRun(T0), 1, 'one round: the plain UDP contact only (not another instance\'s device)');
  t.same(sent, [['udp:5062', '\r\n\r\n']]);
  t.equal(ka.maybeRun(T0 + 19_000), 0, 'not due yet');
  t.equal(ka.maybeRun(T0 + 20_000), 1, 'due after the interval');
  every = 0;
  t.equal(ka.maybeRun(T0 + 60_000), 0, 'natKeepalive: 0 turns it off');
});
