/**
 * A mobile phone roams between instances (several instances, RFC 5626 outbound): it registers a
 * flow (+sip.instance, reg-id, Supported: outbound) over TCP through sip-a, moves to another
 * network and registers the same instance and reg-id through sip-b over a new connection, from
 * a new address, with a new Call-ID. Behind NAT it can only be reached over the flow it opened
 * last, so:
 * - exactly one binding remains, owned by sip-b, in both instances' views and in Redis;
 * - a call arriving at sip-a and one arriving at sip-b ring the new flow only, never the dead
 *   one at sip-a (still open here, as a connection that has not timed out yet);
 * - the old flow does not come back after lease renewals, nor after both instances resync
 *   (Redis restarted empty), nor when sip-a's connection to the phone closes.
 * Two shapes of phone: one whose Contact names its socket (a new Contact after the move), and
 * one whose Contact stays the same (e.g. sip:user@x.invalid;ob). For the latter the old
 * connection closes at sip-a just as the phone registers through sip-b, sip-a hearing the close
 * before sip-b's change (sip-a is paused meanwhile so that the order is certain): sip-a's
 * removal of its own stale binding must not delete the one sip-b now owns under the same key.
 * Last, the phone roams while Redis is down, so sip-a never hears that its binding was
 * replaced: when Redis is back and both resync, the later registration (through sip-b) wins.
 * The trunk is raw UDP from CLUSTER_HOSTS.trunkIn; the phone answers 486 (no dialog to end).
 * Port block 27, Redis on 26386.
 */
import type net from 'node:net';
import t from 'tap';
import { contactsIn, CLUSTER_HOSTS, INSTANCES, ownersIn, PW, startCluster, type Cluster, type InstanceName } from './cluster-kit.js';
import { DOMAIN, portBlock, waitFor } from './harness.js';
import { digestAuth, header, TcpPeer, UdpPeer } from './raw-sip.js';

const P = portBlock(27);
const REDIS_PORT = 26386;
const KEEPALIVE_S = 1; // lease 3 s, renewed every second
/** The phone's address on its second network (its first is CLUSTER_HOSTS.annaMobile / annaSoft). */
const ROAMED = '127.0.3.16';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.3.32\r\ns=-\r\nc=IN IP4 127.0.3.32\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A phone on TCP (raw-sip's TcpPeer): digest REGISTER with an RFC 5626 flow, replies. */
class TcpPhone {
  private cseq = 0;

  private constructor(
    readonly peer: TcpPeer,
    readonly user: { username: string; password: string },
    /** The Contact URI to register; undefined: sip:user@<local address>:<port>;transport=tcp;ob. */
    private readonly fixedContact: string | undefined,
    readonly flow: string,
    readonly callId: string,
  ) {}

  static async connect(o: { to: InstanceName; from: string; user: { username: string; password: string }; contact?: string; flow: string; callId: string }): Promise<TcpPhone> {
    return new TcpPhone(await TcpPeer.connect(INSTANCES[o.to], P.sip, o.from), o.user, o.contact, o.flow, o.callId);
  }

  get sock(): net.Socket {
    return this.peer.sock;
  }

  get received(): string[] {
    return this.peer.received;
  }

  get contact(): string {
    return this.fixedContact ?? `sip:${this.user.username}@${this.sock.localAddress}:${this.sock.localPort};transport=tcp;ob`;
  }

  get closed(): boolean {
    return this.sock.destroyed;
  }

  invites(): string[] {
    return this.received.filter((m) => m.startsWith('INVITE '));
  }

  async next(pred: (m: string) => boolean, timeoutMs = 5000): Promise<string> {
    return waitFor(`${this.user.username} over ${this.sock.localAddress}:${this.sock.localPort}: a matching message`, () => this.received.find(pred), timeoutMs, 20);
  }

  private registerText(expires: number, auth: string): string {
    const cseq = ++this.cseq;
    const local = `${this.sock.localAddress}:${this.sock.localPort}`;
    return [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/TCP ${local};branch=z9hG4bK-roam-${this.sock.localPort}-${cseq}`,
      'Max-Forwards: 70',
      `From: <sip:${this.user.username}@${DOMAIN}>;tag=r${this.sock.localPort}`,
      `To: <sip:${this.user.username}@${DOMAIN}>`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <${this.contact}>${this.flow}`,
      ...(auth ? [`Authorization: ${auth}`] : []),
      'Supported: outbound, path',
      `Expires: ${expires}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  }

  private answerTo(cseq: number): (m: string) => boolean {
    return (m) => m.startsWith('SIP/2.0') && new RegExp(`^CSeq: ${cseq} REGISTER`, 'mi').test(m);
  }

  /** REGISTER, answer the 401, resolve with the final response. */
  async register(expires = 300): Promise<string> {
    const challenge = await this.challenge(expires);
    if (!challenge.startsWith('SIP/2.0 401')) return challenge;
    return this.authorized(challenge, expires)();
  }

  /** The first REGISTER: resolves with its answer (a 401). */
  challenge(expires = 300): Promise<string> {
    this.sock.write(this.registerText(expires, ''));
    return this.next(this.answerTo(this.cseq));
  }

  /** Sends the REGISTER that answers challenge now; the function returned waits for its final response. */
  authorized(challenge: string, expires = 300): () => Promise<string> {
    const offer = header(challenge, 'www-authenticate')[0]!;
    this.sock.write(this.registerText(expires, digestAuth(this.user, offer, 'REGISTER', `sip:${DOMAIN}`, 'MD5')));
    const cseq = this.cseq;
    return () => this.next(this.answerTo(cseq));
  }

  /** A response to req, with a To tag. */
  reply(req: string, status: string): void {
    this.sock.write(
      [
        `SIP/2.0 ${status}`,
        ...header(req, 'via').map((v) => `Via: ${v}`),
        `From: ${header(req, 'from')[0]}`,
        `To: ${header(req, 'to')[0]};tag=ph${this.sock.localPort}`,
        `Call-ID: ${header(req, 'call-id')[0]}`,
        `CSeq: ${header(req, 'cseq')[0]}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
  }

  close(): void {
    this.sock.destroy();
  }
}

const cl: Cluster = await startCluster(t, { block: 27, redisPort: REDIS_PORT, calls: { keepalive: KEEPALIVE_S, keepaliveFailures: 2 } });
const trunk = await UdpPeer.open(CLUSTER_HOSTS.trunkIn);
t.teardown(() => trunk.close());

/** The contacts of a device in Redis, per owner (sipbob:bindings:<instance>, key username + "\n" + contact). */
async function inRedis(username: string): Promise<Record<InstanceName, string[]>> {
  const out = { 'sip-a': [], 'sip-b': [], 'sip-c': [] } as Record<InstanceName, string[]>;
  for (const name of Object.keys(INSTANCES) as InstanceName[]) {
    for (const key of Object.keys(await cl.db.hgetall(`sipbob:bindings:${name}`))) {
      const [user, contact] = key.split('\n');
      if (user === username) out[name].push(contact!);
    }
  }
  return out;
}

/** What each instance's view shows for a device: its contacts and who owns each. */
async function views(username: string): Promise<Record<'sip-a' | 'sip-b', { contacts: string[]; owners: Array<string | undefined> }>> {
  const [a, b] = await Promise.all([cl.ext('sip-a', '200'), cl.ext('sip-b', '200')]);
  return {
    'sip-a': { contacts: contactsIn(a, username), owners: ownersIn(a, username) },
    'sip-b': { contacts: contactsIn(b, username), owners: ownersIn(b, username) },
  };
}

/** One binding, contact, owned by `owner`, in both views and in Redis (under the owner only). */
async function onlyBinding(username: string, contact: string, owner: InstanceName): Promise<boolean> {
  const v = await views(username);
  const r = await inRedis(username);
  return (
    (['sip-a', 'sip-b'] as const).every((n) => v[n].contacts.length === 1 && v[n].contacts[0] === contact && v[n].owners[0] === owner) &&
    r[owner].length === 1 &&
    r[owner][0] === contact &&
    (Object.keys(r) as InstanceName[]).every((n) => n === owner || r[n].length === 0)
  );
}

/** The state as a detail for a failed assertion. */
async function state(username: string): Promise<object> {
  return { views: await views(username), redis: await inRedis(username) };
}

/** Holds `check` for `ms` (polled): the state stays as it is. */
async function holds(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await check())) return false;
    await sleep(100);
  }
  return check();
}

let calls = 0;
/**
 * The trunk calls extension 200 through `at`; the phone that gets the INVITE answers 486 (no
 * dialog to tear down). Resolves with the final status the trunk got (after its ACK).
 */
async function trunkCall(at: InstanceName, answering: TcpPhone): Promise<{ status: number; callId: string }> {
  const n = ++calls;
  const callId = `roam-call-${n}`;
  const branch = `z9hG4bK-roam-call-${n}`;
  const common = [`From: <sip:+4930555@${CLUSTER_HOSTS.trunkIn}>;tag=tr${n}`, `To: <sip:200@${DOMAIN}>`, `Call-ID: ${callId}`];
  trunk.send(
    [
      `INVITE sip:200@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${trunk.host}:${trunk.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      ...common,
      'CSeq: 1 INVITE',
      `Contact: <sip:carrier@${trunk.host}:${trunk.port}>`,
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(SDP)}`,
      '',
      SDP,
    ].join('\r\n'),
    P.sip,
    INSTANCES[at],
  );
  const invite = await answering.next((m) => m.startsWith('INVITE ') && m.includes(callId)).catch(() => undefined);
  if (invite) answering.reply(invite, '486 Busy Here');
  const final = await trunk.next((m) => /^SIP\/2\.0 [2-6]\d\d /.test(m) && m.includes(callId), 10_000);
  const toLine = header(final, 'to')[0]!;
  trunk.send(
    [
      `ACK sip:200@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${trunk.host}:${trunk.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      common[0],
      `To: ${toLine}`,
      common[2],
      'CSeq: 1 ACK',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    P.sip,
    INSTANCES[at],
  );
  return { status: Number(final.split(' ')[1]), callId };
}

t.test('a phone with a new Contact roams from sip-a to sip-b: one binding, owned by sip-b, and only the new flow rings', async (t) => {
  const user = { username: 'anna-mobile', password: PW['anna-mobile'] };
  const flow = ';+sip.instance="<urn:uuid:7d1b9e40-0000-4000-8000-00000000b001>";reg-id=1';
  const atA = await TcpPhone.connect({ to: 'sip-a', from: CLUSTER_HOSTS.annaMobile, user, flow, callId: 'roam-reg-wifi' });
  t.teardown(() => atA.close());
  t.match(await atA.register(), /^SIP\/2\.0 200 /, 'registered through sip-a');
  const seen = await waitFor('both instances know the flow at sip-a', async () => ((await onlyBinding(user.username, atA.contact, 'sip-a')) ? true : undefined), 5000).catch((e: Error) => e.message);
  t.equal(seen, true, 'one binding, owned by sip-a, everywhere', await state(user.username));

  // The phone moved to another network: a new address, connection and Call-ID, the same flow.
  const atB = await TcpPhone.connect({ to: 'sip-b', from: ROAMED, user, flow, callId: 'roam-reg-lte' });
  t.teardown(() => atB.close());
  const ok = await atB.register();
  t.match(ok, /^SIP\/2\.0 200 /, 'registered through sip-b');
  t.same(header(ok, 'contact').map((c) => /<([^>]+)>/.exec(c)?.[1]), [atB.contact], 'the 200 lists the new flow only');
  const moved = await waitFor('one binding, owned by sip-b', async () => ((await onlyBinding(user.username, atB.contact, 'sip-b')) ? true : undefined), 5000).catch((e: Error) => e.message);
  t.equal(moved, true, 'one binding, the new flow, owned by sip-b, in both views and in Redis', await state(user.username));

  for (const at of ['sip-a', 'sip-b'] as const) {
    const r = await trunkCall(at, atB);
    t.equal(r.status, 486, `a call arriving at ${at} reaches the new flow (its 486 comes back)`);
    t.ok(
      atB.invites().some((m) => m.includes(r.callId)),
      `the new flow (through sip-b) rang for the call at ${at}`,
    );
    t.same(atA.invites(), [], `the dead flow at sip-a did not ring for the call at ${at}`);
  }

  // Lease renewals (every second) and a resync of both instances (Redis restarted empty: each
  // writes again what it owns) must not bring the old flow back.
  const stays = () => onlyBinding(user.username, atB.contact, 'sip-b');
  t.ok(await holds(stays, 2500), 'after lease renewals, still only the new flow', await state(user.username));
  await cl.redis.restart();
  const back = await waitFor('both instances wrote their state again', async () => ((await stays().catch(() => false)) ? true : undefined), 10_000).catch((e: Error) => e.message);
  t.equal(back, true, 'after Redis came back empty and both resynchronised: only the new flow, owned by sip-b', await state(user.username));
  t.ok(await holds(stays, 1500), 'and it stays so', await state(user.username));

  // The old connection finally closes at sip-a: nothing of the new flow goes.
  atA.close();
  await sleep(300);
  t.ok(await holds(stays, 1000), 'sip-a\'s old connection closed: the new flow stays', await state(user.username));
  const r = await trunkCall('sip-a', atB);
  t.equal(r.status, 486, 'a call at sip-a still reaches the new flow');

  t.match(await atB.register(0), /^SIP\/2\.0 200 /, 'unregistered through sip-b');
  const gone = await waitFor('no binding left', async () => {
    const v = await views(user.username);
    const red = await inRedis(user.username);
    return v['sip-a'].contacts.length + v['sip-b'].contacts.length + red['sip-a'].length + red['sip-b'].length === 0 ? true : undefined;
  }, 5000).catch((e: Error) => e.message);
  t.equal(gone, true, 'nothing left anywhere after the un-REGISTER', await state(user.username));
});

t.test('a phone with the same Contact roams while its old connection closes at sip-a: sip-a does not delete sip-b\'s binding', async (t) => {
  const user = { username: 'anna-soft', password: PW['anna-soft'] };
  const flow = ';+sip.instance="<urn:uuid:7d1b9e40-0000-4000-8000-00000000b002>";reg-id=1';
  const contact = 'sip:anna-soft@roaming-phone.invalid;transport=tcp;ob';
  const atA = await TcpPhone.connect({ to: 'sip-a', from: CLUSTER_HOSTS.annaSoft, user, contact, flow, callId: 'roam-same-wifi' });
  t.teardown(() => atA.close());
  t.match(await atA.register(), /^SIP\/2\.0 200 /, 'registered through sip-a');
  const seen = await waitFor('both instances know the flow at sip-a', async () => ((await onlyBinding(user.username, contact, 'sip-a')) ? true : undefined), 5000).catch((e: Error) => e.message);
  t.equal(seen, true, 'one binding, owned by sip-a, everywhere', await state(user.username));

  // The phone is on its new network: sip-b challenged its REGISTER. Then sip-b stands still:
  // the answer to the challenge waits in its socket, and behind it sip-a's announcement that
  // it removed its own binding (the phone's old connection closed there). sip-b reads them in
  // that order: it registers the contact (taking it over from sip-a), then hears sip-a's removal.
  const atB = await TcpPhone.connect({ to: 'sip-b', from: ROAMED, user, contact, flow, callId: 'roam-same-lte' });
  t.teardown(() => atB.close());
  const challenge = await atB.challenge();
  t.match(challenge, /^SIP\/2\.0 401 /, 'sip-b challenges the REGISTER');
  const b = cl.proxy('sip-b');
  b.pause();
  try {
    const final = atB.authorized(challenge);
    await sleep(100);
    atA.close();
    const closedAtA = await waitFor('sip-a removed its binding from Redis', async () => ((await inRedis(user.username))['sip-a'].length === 0 ? true : undefined), 5000).catch((e: Error) => e.message);
    t.equal(closedAtA, true, 'the old connection closed at sip-a, which removed its own binding', await inRedis(user.username));
    await sleep(100); // sip-a's announcement reaches sip-b's subscriber socket
    b.resume();
    const ok = await final();
    t.match(ok, /^SIP\/2\.0 200 /, 'registered through sip-b');

    const stays = () => onlyBinding(user.username, contact, 'sip-b');
    const moved = await waitFor('one binding, owned by sip-b', async () => ((await stays()) ? true : undefined), 5000).catch((e: Error) => e.message);
    t.equal(moved, true, 'one binding, owned by sip-b, in both views and in Redis', await state(user.username));
    t.ok(await holds(stays, 2500), 'it stays so (sip-a\'s close of its own stale binding took nothing of sip-b\'s)', await state(user.username));

    for (const at of ['sip-a', 'sip-b'] as const) {
      const r = await trunkCall(at, atB);
      t.equal(r.status, 486, `a call arriving at ${at} reaches the flow through sip-b (its 486 comes back)`);
      t.ok(atB.invites().some((m) => m.includes(r.callId)), `the flow through sip-b rang for the call at ${at}`);
    }
    t.match(await atB.register(0), /^SIP\/2\.0 200 /, 'unregistered through sip-b');
  } finally {
    b.resume();
  }
});

t.test('a phone roams while Redis is down: when it is back, the later registration wins and the old flow does not ring', async (t) => {
  const user = { username: 'anna-desk', password: PW['anna-desk'] };
  const flow = ';+sip.instance="<urn:uuid:7d1b9e40-0000-4000-8000-00000000b003>";reg-id=1';
  const atA = await TcpPhone.connect({ to: 'sip-a', from: CLUSTER_HOSTS.annaDesk, user, flow, callId: 'roam-down-wifi' });
  t.teardown(() => atA.close());
  t.match(await atA.register(), /^SIP\/2\.0 200 /, 'registered through sip-a');
  const seen = await waitFor('both instances know the flow at sip-a', async () => ((await onlyBinding(user.username, atA.contact, 'sip-a')) ? true : undefined), 5000).catch((e: Error) => e.message);
  t.equal(seen, true, 'one binding, owned by sip-a, everywhere', await state(user.username));

  // Redis goes away; the phone moves to sip-b meanwhile, which cannot tell sip-a. sip-a still
  // holds its own binding of the old flow (its connection has not closed: a dead NAT flow).
  await cl.redis.stop();
  // Some time on the move: the registration through sip-b expires clearly later than the one
  // through sip-a (both ask for 300 s), which is how the instances tell the later one.
  await sleep(1100);
  const atB = await TcpPhone.connect({ to: 'sip-b', from: ROAMED, user, flow, callId: 'roam-down-lte' });
  t.teardown(() => atB.close());
  t.match(await atB.register(), /^SIP\/2\.0 200 /, 'registered through sip-b while Redis is down');
  await cl.redis.restart();

  const stays = () => onlyBinding(user.username, atB.contact, 'sip-b');
  const back = await waitFor('one binding, owned by sip-b', async () => ((await stays().catch(() => false)) ? true : undefined), 10_000).catch((e: Error) => e.message);
  t.equal(back, true, 'after both resynchronised: only the later flow, owned by sip-b, in both views and in Redis', await state(user.username));
  t.ok(await holds(stays, 2500), 'and it stays so through lease renewals', await state(user.username));
  for (const at of ['sip-a', 'sip-b'] as const) {
    const r = await trunkCall(at, atB);
    t.equal(r.status, 486, `a call arriving at ${at} reaches the new flow`);
    t.same(atA.invites(), [], `the dead flow at sip-a did not ring for the call at ${at}`);
  }
  t.match(await atB.register(0), /^SIP\/2\.0 200 /, 'unregistered through sip-b');
});
