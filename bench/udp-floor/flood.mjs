// Sends n copies of an unauthenticated INVITE (about 600 bytes) at rate/s from address
// `from` to 127.0.0.1:port, without waiting for anything; bounded in count and in time (120 s).
//   node flood.mjs N RATE PORT [FROM=127.0.0.90]
import dgram from 'node:dgram';

const [n, rate, port] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])];
const from = process.argv[5] ?? '127.0.0.90';
const c = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
c.bind(0, from, () => {
  const p = c.address().port;
  const msg = Buffer.from(
    `INVITE sip:200@bench.sipbob.test SIP/2.0\r\nVia: SIP/2.0/UDP ${from}:${p};rport;branch=z9hG4bK-flood-0000000001\r\n` +
      `Max-Forwards: 70\r\nFrom: "friendly-scanner" <sip:100@bench.sipbob.test>;tag=3a1b2c3d\r\nTo: <sip:200@bench.sipbob.test>\r\n` +
      `Call-ID: 1234567890abcdef@${from}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@${from}:${p}>\r\nUser-Agent: friendly-scanner\r\n` +
      `Accept: application/sdp\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\n` +
      `v=0\r\no=- 1 1 IN IP4 ${from}\r\ns=-\r\nc=IN IP4 ${from}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n`,
  );
  let sent = 0;
  const perTick = Math.max(1, Math.round(rate / 100));
  const tick = setInterval(() => {
    for (let k = 0; k < perTick && sent < n; k++, sent++) c.send(msg, port, '127.0.0.1');
    if (sent >= n) {
      clearInterval(tick);
      setTimeout(() => process.exit(0), 50);
    }
  }, 10);
  setTimeout(() => process.exit(1), 120_000);
});
