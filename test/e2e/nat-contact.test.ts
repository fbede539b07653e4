/**
 * Contact or source, end to end with SIPp (interface.md "Open to the internet"):
 * - a REGISTER made for another socket (one SIPp registers, from its own port, the Contact of
 *   a SIPp UAS on another port) rings the UAS at its Contact;
 * - a device behind "NAT" (Via and Contact name 192.168.1.20:5060, the REGISTER comes from
 *   127.0.0.13) rings where its REGISTER came from.
 */
import t from 'tap';
import { HOSTS, allDone, assertExit, call, contactsOf, describe, portBlock, portCounter, sipp, sippServer, startProxy } from './harness.js';

const P = portBlock(13);
const port = portCounter(P.base + 50);
const DEVICES = {
  uas: { username: 'uas-desk', password: 'pw-uas' },
  nat: { username: 'nat-phone', password: 'pw-nat' },
};

const proxy = await startProxy({
  sipPort: P.sip,
  httpPort: P.http,
  // Short: a call that rings into nothing fails within the callers' timeout.
  calls: { ringTimeout: 5 },
  trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
  extensions: [
    { number: '200', name: 'UAS', busyOnBusy: false, devices: [DEVICES.uas] },
    { number: '201', name: 'NAT', busyOnBusy: false, devices: [DEVICES.nat] },
  ],
});
t.teardown(() => proxy.stop());

function registerContact(dev: { username: string; password: string }, local: string, localPort: number, contact: [string, number], via: [string, number]) {
  return sipp({
    scenario: 'register-contact.xml',
    local,
    localPort,
    remote: proxy.remote,
    username: dev.username,
    password: dev.password,
    vars: { user: dev.username, expires: '300', contact_host: contact[0], contact_port: String(contact[1]), via_host: via[0], via_port: String(via[1]) },
    timeoutSec: 10,
    label: `register-contact.xml ${dev.username}@${local}:${localPort} for ${contact.join(':')}`,
  });
}

const fromTrunk = () => ({ local: HOSTS.trunkIn, localPort: port(), remote: proxy.remote });

t.test('registered for another socket: the UAS is rung at its Contact, not where the REGISTER came from', async (t) => {
  const regPort = P.base + 1;
  const uasPort = P.base + 2;
  const uas = await sippServer({
    scenario: 'phone-answer.xml',
    local: HOSTS.phone1,
    localPort: uasPort,
    pauseMs: 300,
    timeoutSec: 20,
    label: `phone-answer.xml UAS ${HOSTS.phone1}:${uasPort}`,
  });
  const reg = await registerContact(DEVICES.uas, HOSTS.phone1, regPort, [HOSTS.phone1, uasPort], [HOSTS.phone1, regPort]);
  if (!assertExit(t, reg, 0, `REGISTER from ${regPort} for the Contact at ${uasPort}`)) {
    await uas.stop();
    return;
  }
  t.same(await contactsOf(proxy, '200', DEVICES.uas.username), [`sip:${DEVICES.uas.username}@${HOSTS.phone1}:${uasPort};transport=UDP`]);
  const caller = await call({ ...fromTrunk(), to: '200', pauseMs: 300, timeoutSec: 15 });
  const [phone] = await allDone([uas]);
  assertExit(t, caller, 0, 'the trunk call is answered and ends');
  assertExit(t, phone!, 0, 'the UAS at the Contact answered it');
  if (caller.code !== 0) t.comment(describe(caller));
});

t.test('behind NAT (private Via and Contact): rung where the REGISTER came from', async (t) => {
  const natPort = P.base + 3;
  const reg = await registerContact(DEVICES.nat, HOSTS.phone3, natPort, ['192.168.1.20', 5060], ['192.168.1.20', 5060]);
  if (!assertExit(t, reg, 0, 'REGISTER with Via and Contact 192.168.1.20:5060')) return;
  t.same(await contactsOf(proxy, '201', DEVICES.nat.username), [`sip:${DEVICES.nat.username}@192.168.1.20:5060;transport=UDP`], 'the Contact as registered');
  const uas = await sippServer({
    scenario: 'phone-answer.xml',
    local: HOSTS.phone3,
    localPort: natPort,
    pauseMs: 300,
    timeoutSec: 20,
    label: `phone-answer.xml NATed ${HOSTS.phone3}:${natPort}`,
  });
  const caller = await call({ ...fromTrunk(), to: '201', pauseMs: 300, timeoutSec: 15 });
  const [phone] = await allDone([uas]);
  assertExit(t, caller, 0, 'the trunk call is answered and ends');
  assertExit(t, phone!, 0, `the phone at its REGISTER's source ${HOSTS.phone3}:${natPort} answered it`);
});
