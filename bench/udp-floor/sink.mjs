// Node's own cost to receive a datagram and do nothing with it: the floor under a dropped
// datagram. Run under callgrind by ../banned-drop.sh. A datagram "count?" is answered with
// the number received so far (asked outside the counted windows).
import dgram from 'node:dgram';

const port = Number(process.argv[2] ?? 27996);
let received = 0;
const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, lookup: (host, _o, cb) => cb(null, host, 4) });
s.on('message', (m, r) => {
  if (m.length === 6 && m.toString('latin1') === 'count?') s.send(String(received), r.port, r.address);
  else received++;
});
s.bind(port, '127.0.0.1');
