/**
 * RFC 5626 across a restart: a phone registers a flow over TLS (+sip.instance, reg-id), the
 * proxy is killed (SIGKILL) and started again on the same storage, and the phone comes back
 * on a new connection with a new Call-ID and the same instance and reg-id. One binding must
 * remain: the restored one (its connection died with the old process) is replaced, not left
 * to ring into nothing until it expires. This needs the store to keep instance and reg-id.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { contactsOf, portBlock, startProxy, waitFor, type Proxy, type ProxyOptions } from './harness.js';
import { TlsPhone } from './tls-kit.js';
import { makeCa, makeCert } from '../support/test-certs.js';

const P = portBlock(31);
const TLS_PORT = P.sip + 1;
const PHONE_HOST = '127.0.0.86';
const DEV = { username: 'rita-flow', password: 'flow-pw-8601' };
const EXT = '420';
const FLOW = ';+sip.instance="<urn:uuid:4f1c2a2e-0000-4000-8000-00000000a420>";reg-id=1';

const ca = makeCa();
const cert = makeCert(ca, 'proxy');
const options: ProxyOptions = {
  sipPort: P.sip,
  httpPort: P.http,
  listen: [`udp://127.0.0.1:${P.sip}`, `tls://127.0.0.1:${TLS_PORT}`],
  tls: { cert: cert.certFile, key: cert.keyFile },
  extensions: [{ number: EXT, name: 'Rita Flow', devices: [DEV] }],
};
let proxy: Proxy = await startProxy(options);
t.teardown(async () => {
  await proxy.stop();
  ca.remove();
});

t.test('after a restart, the same instance and reg-id on a new connection replace the restored binding', async (t) => {
  const before = await TlsPhone.connect(TLS_PORT, PHONE_HOST, ca.pem, DEV);
  t.teardown(() => before.close());
  before.contactParams = FLOW;
  t.match(await before.register(300, ['Supported: outbound']), /^SIP\/2\.0 200 /, 'the flow registered');
  const oldContact = before.contact; // names the connection's port, unknown once it is closed

  // Kill only once the binding is in the journal (written on the next turn of the loop).
  const journal = path.join(proxy.storageDir, 'state.jsonl');
  const read = () => {
    try {
      return readFileSync(journal, 'utf8');
    } catch {
      return '';
    }
  };
  await waitFor('the binding in the journal', () => read().includes(oldContact), 5000, 20);
  await proxy.kill9();
  before.close();

  proxy = await startProxy({ ...options, storageDir: proxy.storageDir });
  t.same(await contactsOf(proxy, EXT, DEV.username), [oldContact], 'the binding was restored');

  const after = await TlsPhone.connect(TLS_PORT, PHONE_HOST, ca.pem, DEV);
  t.teardown(() => after.close());
  after.contactParams = FLOW;
  t.not(after.callId, before.callId, 'a new Call-ID');
  t.not(after.contact, oldContact, 'a new Contact (the new connection)');
  t.match(await after.register(300, ['Supported: outbound']), /^SIP\/2\.0 200 /, 'the phone registered again');
  t.same(await contactsOf(proxy, EXT, DEV.username), [after.contact], 'one binding: the new flow replaced the restored one');
});
