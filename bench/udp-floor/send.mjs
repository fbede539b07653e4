// Sends n datagrams of 700 bytes (a typical SIP message) at rate/s to the echo and counts the
// replies. Bounded in count and in time (60 s).
import dgram from 'node:dgram';

const [n, rate, port] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4] ?? 27999)];
const c = dgram.createSocket('udp4');
const msg = Buffer.alloc(700, 65);
let sent = 0;
let got = 0;
c.on('message', () => {
  if (++got === n) done();
});
const tick = setInterval(() => {
  for (let k = 0; k < rate / 100 && sent < n; k++, sent++) c.send(msg, port, '127.0.0.1');
  if (sent >= n) clearInterval(tick);
}, 10);
const limit = setTimeout(done, 60_000);
function done() {
  clearTimeout(limit);
  console.log(`echoed ${got} of ${n}`);
  process.exit(0);
}
