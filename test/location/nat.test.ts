/** Contact or source: nat_uac_test's flags and where requests to a registered contact go (pure). */
import t from 'tap';
import { contactDest, natFlags, NAT_PRIVATE_CONTACT, NAT_PRIVATE_VIA, NAT_VIA_NOT_SOURCE, NAT_VIA_PORT_NOT_SOURCE } from '../../src/location/nat.js';
import { parseVia, type Via } from '../../src/sip/headers.js';
import { parseUri, type SipUri } from '../../src/sip/uri.js';
import type { Endpoint } from '../../src/transport/endpoint.js';

const via = (s: string): Via => parseVia(s) ?? (() => { throw new Error(s); })();
const uri = (s: string): SipUri => parseUri(s) ?? (() => { throw new Error(s); })();
const local = { transport: 'udp' as const, host: '192.0.2.2', port: 5060 };
const from = (address: string, port: number, transport: 'udp' | 'tcp' = 'udp'): Endpoint => ({ transport, address, port, local });

t.test('natFlags: private Contact (1), Via host not the source (2), private Via (4), Via port not the source port (16)', async (t) => {
  const src = from('198.51.100.7', 5060);
  t.equal(natFlags(uri('sip:anna@198.51.100.7'), via('SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1'), src), 0, 'a public phone that says where it is');
  t.equal(natFlags(uri('sip:anna@192.168.1.20:5060'), via('SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1'), src), NAT_PRIVATE_CONTACT);
  t.equal(natFlags(uri('sip:anna@100.64.3.4'), via('SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1'), src), NAT_PRIVATE_CONTACT, 'carrier-grade NAT space (RFC 6598)');
  t.equal(natFlags(uri('sip:anna@198.51.100.7'), via('SIP/2.0/UDP phone.example.com;branch=z9hG4bK1'), src), NAT_VIA_NOT_SOURCE, 'a host name in Via is not the source address');
  t.equal(
    natFlags(uri('sip:anna@198.51.100.7'), via('SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1'), src),
    NAT_VIA_NOT_SOURCE | NAT_PRIVATE_VIA,
  );
  t.equal(natFlags(uri('sip:anna@198.51.100.7'), via('SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK1;rport'), src), NAT_VIA_PORT_NOT_SOURCE);
  t.equal(natFlags(uri('sip:anna@198.51.100.7:5062'), via('SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK1'), from('198.51.100.7', 5062)), 0, 'Via port as the source port');
  t.equal(
    natFlags(uri('sip:anna@192.168.1.20:5060'), via('SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1;rport'), from('198.51.100.7', 40000)),
    NAT_PRIVATE_CONTACT | NAT_VIA_NOT_SOURCE | NAT_PRIVATE_VIA | NAT_VIA_PORT_NOT_SOURCE,
    'a phone behind a NAT box, all four',
  );
  t.equal(natFlags(uri('sip:anna@127.0.0.11:5070'), via('SIP/2.0/UDP 127.0.0.11:5070;branch=z9hG4bK1'), from('127.0.0.11', 5070)), 0, 'loopback is not private');
});

t.test('contactDest: the Contact when no NAT shows (a REGISTER made for another socket)', async (t) => {
  const src = from('127.0.0.11', 16000);
  const d = contactDest(uri('sip:uas@127.0.0.11:16001;transport=UDP'), via('SIP/2.0/UDP 127.0.0.11:16000;branch=z9hG4bK1;rport'), src);
  t.same(d, { transport: 'udp', address: '127.0.0.11', port: 16001 }, 'the UAS port, not the registering one');
  t.equal(d.local, undefined, 'no listener: chosen by address when sent');
  t.same(
    contactDest(uri('sip:pbx@198.51.100.20;transport=tcp'), via('SIP/2.0/UDP 198.51.100.20;branch=z9hG4bK1'), from('198.51.100.20', 5060)),
    { transport: 'tcp', address: '198.51.100.20', port: 5060 },
    'registered over UDP for a TCP contact: TCP, port 5060 when absent',
  );
  t.same(
    contactDest(uri('sip:pbx@[2001:db8::7]:5070'), via('SIP/2.0/UDP [2001:db8::7]:5070;branch=z9hG4bK1'), from('2001:db8::7', 5070)),
    from('2001:db8::7', 5070),
    'IPv6 contact equal to the source: the source',
  );
});

t.test('contactDest: the source itself when NAT shows, over a stream, or when the Contact cannot be reached', async (t) => {
  const src = from('127.0.0.13', 16002);
  const v = via('SIP/2.0/UDP 127.0.0.13:16002;branch=z9hG4bK1;rport');
  t.equal(contactDest(uri('sip:nat@192.168.1.20:5060'), via('SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1;rport'), src), src, 'private Contact and Via: the source, same object (keeps its listener)');
  t.equal(contactDest(uri('sip:nat@192.168.1.20:5060'), v, src), src, 'a private Contact alone is enough');
  t.equal(contactDest(uri('sip:uas@127.0.0.13:16002'), v, src), src, 'Contact is the source: the source object');
  const tcp = from('127.0.0.13', 40123, 'tcp');
  t.equal(contactDest(uri('sip:uas@127.0.0.13:5070;transport=tcp'), via('SIP/2.0/TCP 127.0.0.13:40123;branch=z9hG4bK1'), tcp), tcp, 'TCP: always the connection');
  t.equal(contactDest(uri('sip:uas@phone.example.com:5070'), v, src), src, 'a host name: no DNS here');
  t.equal(contactDest(uri('sips:uas@127.0.0.13:5071'), v, src), src, 'sips: TLS is not spoken');
  t.equal(contactDest(uri('sip:uas@127.0.0.13:5071;transport=sctp'), v, src), src, 'a transport we do not speak');
  t.equal(contactDest(uri('sip:uas@0.0.0.0:5071'), v, src), src, 'the unspecified address');
  const pub = from('198.51.100.7', 5060);
  t.equal(contactDest(uri('sip:uas@127.0.0.1:8080'), via('SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1'), pub), pub, 'a loopback Contact from another host');
});
