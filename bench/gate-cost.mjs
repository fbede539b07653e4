// What SourceGuard.admit costs a datagram from a source that is not banned (every datagram
// pays it since issue 12): a loop of N calls, each with a fresh address string as a socket's
// rinfo gives, against the same loop without the call. Run both under callgrind and divide
// the difference of the totals by N (after npm run build):
//   for m in gate bare; do valgrind --tool=callgrind --callgrind-out-file=/tmp/gate-$m.out \
//     node --single-threaded bench/gate-cost.mjs $m 2000000; done
//   awk '/^totals:/{print FILENAME, $2}' /tmp/gate-gate.out /tmp/gate-bare.out
// Without valgrind it prints nanoseconds per call.
import pino from 'pino';
import { SourceGuard } from '../dist/src/security/guard.js';

const mode = process.argv[2] ?? 'gate';
const n = Number(process.argv[3] ?? 2_000_000);
const guard = new SourceGuard(
  { trusted: [{ address: '10.0.0.0', prefix: 8 }], floodLimit: { requests: 1e9, seconds: 2, ban: 60 }, authFailures: { max: 10, seconds: 300, ban: 900 } },
  { log: pino({ level: 'silent' }) },
);
const data = Buffer.from('INVITE sip:200@pbx SIP/2.0\r\n\r\n');
const hosts = ['192.0.2.10', '192.0.2.11', '198.51.100.7', '203.0.113.99'];

let admitted = 0;
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const a = `${hosts[i & 3]}.`.slice(0, -1); // a new string object per call, as rinfo.address is
  if (mode === 'bare' ? a.length > 0 : guard.admit(a, data)) admitted++;
}
const ns = Number(process.hrtime.bigint() - t0) / n;
console.log(`${mode}: ${n} calls, ${admitted} admitted, ${ns.toFixed(1)} ns per iteration`);
