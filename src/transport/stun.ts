/**
 * STUN keep-alives on a SIP UDP port (RFC 5626 §4.4.2, §8): a phone using outbound sends
 * RFC 5389 Binding requests to the port it registered through, and learns from the answer
 * whether its NAT mapping changed. Only the Binding request is answered, with
 * XOR-MAPPED-ADDRESS: no authentication, no other attributes (§8 asks for nothing more).
 */
import net from 'node:net';

const MAGIC = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;

/**
 * A datagram that is STUN rather than SIP: the two top bits of a STUN message are zero and its
 * magic cookie sits at byte 4 (RFC 5389 §6, §7.3); SIP starts with a letter or a CR/LF.
 */
export function isStun(data: Buffer): boolean {
  return data.length >= 20 && data[0]! < 2 && data.readUInt32BE(4) === MAGIC;
}

/** The Binding success response to req from address:port; undefined when req is not a well-formed Binding request. */
export function stunBindingResponse(req: Buffer, address: string, port: number): Buffer | undefined {
  if (!isStun(req) || req.readUInt16BE(0) !== BINDING_REQUEST || req.readUInt16BE(2) + 20 !== req.length) return undefined;
  const family = net.isIPv4(address) ? 4 : net.isIPv6(address) ? 6 : 0;
  if (family === 0) return undefined;
  const addrLen = family === 4 ? 4 : 16;
  const out = Buffer.alloc(20 + 4 + 4 + addrLen);
  out.writeUInt16BE(BINDING_SUCCESS, 0);
  out.writeUInt16BE(4 + 4 + addrLen, 2);
  out.writeUInt32BE(MAGIC, 4);
  req.copy(out, 8, 8, 20); // the transaction ID
  out.writeUInt16BE(XOR_MAPPED_ADDRESS, 20);
  out.writeUInt16BE(4 + addrLen, 22);
  out[24] = 0;
  out[25] = family === 4 ? 0x01 : 0x02;
  out.writeUInt16BE(port ^ (MAGIC >>> 16), 26);
  const raw = family === 4 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
  // XOR with the magic cookie, and for IPv6 with the transaction ID after it (RFC 5389 §15.2).
  for (let i = 0; i < addrLen; i++) out[28 + i] = raw[i]! ^ out[4 + i]!;
  return out;
}

function ipv6Bytes(address: string): Buffer {
  const sl = new net.SocketAddress({ address, family: 'ipv6' });
  const [head = '', tail = ''] = sl.address.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = sl.address.includes('::') ? [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16) || 0, i * 2));
  return b;
}
