// Node's own cost per UDP datagram: receive one, send it back, nothing else. Run under
// callgrind by ../udp-floor.sh; the instructions per echo are the floor any Node SIP proxy
// pays per message before doing SIP work.
import dgram from 'node:dgram';

const port = Number(process.argv[2] ?? 27999);
const s = dgram.createSocket({ type: 'udp4', lookup: (host, _o, cb) => cb(null, host, 4) });
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(port, '127.0.0.1');
