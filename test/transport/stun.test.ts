import t from 'tap';
import { isStun, stunBindingResponse } from '../../src/transport/stun.js';

/** A Binding request with transaction ID 0x01..0x0c (RFC 5389 §6). */
function bindingRequest(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt32BE(0x2112a442, 4);
  for (let i = 0; i < 12; i++) b[8 + i] = i + 1;
  return b;
}

t.test('STUN is told from SIP by its first byte and magic cookie', async (t) => {
  t.ok(isStun(bindingRequest()));
  t.notOk(isStun(Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n')));
  t.notOk(isStun(Buffer.from('\r\n\r\n')));
  const noCookie = bindingRequest();
  noCookie.writeUInt32BE(0, 4);
  t.notOk(isStun(noCookie), 'no magic cookie: an RFC 3489 message or garbage');
});

t.test('Binding success carries XOR-MAPPED-ADDRESS of the source (RFC 5389 §15.2)', async (t) => {
  const req = bindingRequest();
  const res = stunBindingResponse(req, '192.0.2.1', 32853)!;
  t.equal(res.readUInt16BE(0), 0x0101, 'Binding success');
  t.equal(res.readUInt16BE(2), 12, 'one attribute of 8 value bytes');
  t.same([...res.subarray(8, 20)], [...req.subarray(8, 20)], 'same transaction ID');
  t.equal(res.readUInt16BE(20), 0x0020, 'XOR-MAPPED-ADDRESS');
  t.equal(res[25], 1, 'IPv4');
  t.equal(res.readUInt16BE(26) ^ 0x2112, 32853, 'port XOR the top of the cookie');
  t.same([...res.subarray(28, 32)].map((b, i) => b ^ [0x21, 0x12, 0xa4, 0x42][i]!), [192, 0, 2, 1], 'address XOR the cookie');
  const v6 = stunBindingResponse(req, '2001:db8::1', 5060)!;
  t.equal(v6.length, 20 + 4 + 20);
  t.equal(v6[25], 2, 'IPv6');
  const key = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), req.subarray(8, 20)]);
  const addr = [...v6.subarray(28, 44)].map((b, i) => b ^ key[i]!);
  t.same(addr, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  t.equal(stunBindingResponse(Buffer.concat([req, Buffer.alloc(4)]), '192.0.2.1', 1), undefined, 'length field must match');
  const indication = bindingRequest();
  indication.writeUInt16BE(0x0011, 0);
  t.equal(stunBindingResponse(indication, '192.0.2.1', 1), undefined, 'only Binding requests are answered');
});
