/**
 * The source guard (security/guard.ts) on a fake clock: flood windows, auth-failure windows,
 * ban expiry and lifting, trusted sources, the bound on its tables, the rate-bounded ban log.
 */
import t from 'tap';
import pino from 'pino';
import { MemoryBans } from '../../src/security/bans.js';
import { SourceGuard, type GuardSettings } from '../../src/security/guard.js';
import { FakeTimers } from '../support/sip.js';

const REQ = Buffer.from('INVITE sip:200@pbx.example SIP/2.0\r\n\r\n');
const RES = Buffer.from('SIP/2.0 200 OK\r\n\r\n');

const SETTINGS: GuardSettings = {
  trusted: [{ address: '10.0.0.0', prefix: 8 }, { address: '2001:db8::', prefix: 32 }],
  floodLimit: { requests: 5, seconds: 2, ban: 60 },
  authFailures: { max: 3, seconds: 300, ban: 900 },
};

function setup(settings: GuardSettings = SETTINGS, maxSources?: number) {
  const clock = new FakeTimers();
  clock.now = 1_700_000_000_000;
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const bans = new MemoryBans();
  const opts: ConstructorParameters<typeof SourceGuard>[1] = { log, bans, now: () => clock.now };
  if (maxSources !== undefined) opts.maxSources = maxSources;
  const guard = new SourceGuard(settings, opts);
  const send = (address: string, n: number, data = REQ) => {
    let admitted = 0;
    for (let i = 0; i < n; i++) if (guard.admit(address, data)) admitted++;
    return admitted;
  };
  return { clock, guard, lines, bans, send };
}

t.test('more requests than the limit in one window: banned, and every message dropped', async (t) => {
  const { guard, send, clock, lines } = setup();
  t.equal(send('192.0.2.1', 5), 5, 'up to the limit: admitted');
  t.notOk(guard.admit('192.0.2.1', REQ), 'one more: refused');
  t.notOk(guard.admit('192.0.2.1', RES), 'while banned, responses are dropped too');
  t.notOk(guard.admitConnection('192.0.2.1'), 'and new connections');
  t.equal(send('192.0.2.2', 5), 5, 'another source is counted on its own');
  t.same(guard.list(), [{ address: '192.0.2.1', reason: 'flood', until: clock.now + 60_000 }]);
  const s = guard.stats;
  t.equal(s.activeBans, 1);
  t.equal(s.dropped.get('flood'), 3, 'the refused request, the response and the connection');
  t.equal(s.bans.get('flood'), 1);
  const ban = lines.find((l) => l.msg === 'source address banned');
  t.match(ban, { level: 40, address: '192.0.2.1', reason: 'flood', requests: 6, seconds: 2 }, 'one warning line per ban');
  t.equal(ban!.until, new Date(clock.now + 60_000).toISOString());
});

t.test('windows: a new window starts the count afresh', async (t) => {
  const { guard, send, clock } = setup();
  t.equal(send('192.0.2.1', 5), 5);
  clock.now += 1999;
  t.notOk(guard.admit('192.0.2.1', REQ), 'still the same 2 s window');
  const { guard: g2, send: send2, clock: c2 } = setup();
  t.equal(send2('192.0.2.1', 5), 5);
  c2.now += 2000;
  t.equal(send2('192.0.2.1', 5), 5, 'the next window: 5 more');
  t.equal(g2.stats.activeBans, 0);
});

t.test('responses are not counted towards the flood limit', async (t) => {
  const { guard, send } = setup();
  t.equal(send('192.0.2.1', 1000, RES), 1000, 'a phone answering our requests is never limited');
  t.equal(send('192.0.2.1', 5), 5, 'its own requests still have the full allowance');
  t.notOk(guard.admit('192.0.2.1', REQ));
  t.ok(guard.admit('192.0.2.3', Buffer.alloc(0)), 'an empty datagram is no crash (and counted)');
  t.ok(guard.admit('192.0.2.4', Buffer.from('SIP/')), 'exactly "SIP/": counted as a request, admitted');
});

t.test('a ban ends by itself', async (t) => {
  const { guard, send, clock } = setup();
  send('192.0.2.1', 6);
  clock.now += 59_999;
  t.notOk(guard.admit('192.0.2.1', REQ), 'a moment before the end: still banned');
  clock.now += 1;
  t.ok(guard.admit('192.0.2.1', REQ), 'at the end: admitted');
  t.equal(send('192.0.2.1', 4), 4, 'with a fresh window');
  t.same(guard.list(), [], 'no longer listed');
  t.equal(guard.stats.activeBans, 0);
});

t.test('a ban can be lifted, under any spelling of the address', async (t) => {
  const { guard, send } = setup();
  send('::ffff:192.0.2.1', 6);
  t.same(
    guard.list().map((b) => b.address),
    ['192.0.2.1'],
    'an IPv4-mapped source is banned as its IPv4 address',
  );
  t.notOk(guard.admit('192.0.2.1', REQ), 'the plain spelling is banned as well (another transport, say)');
  t.ok(guard.lift('192.0.2.1'));
  t.ok(guard.admit('::ffff:192.0.2.1', REQ), 'admitted again');
  t.ok(guard.admit('192.0.2.1', REQ));
  t.notOk(guard.lift('192.0.2.1'), 'lifting what is not banned: false');
  t.notOk(guard.lift('198.51.100.1'));
});

t.test('trusted networks are never limited nor banned', async (t) => {
  const { guard, send } = setup();
  t.equal(send('10.1.2.3', 10_000), 10_000, 'IPv4 network');
  t.equal(send('2001:db8::5', 10_000), 10_000, 'IPv6 network');
  for (let i = 0; i < 100; i++) guard.authFailed('10.1.2.3');
  t.ok(guard.admit('10.1.2.3', REQ), 'no ban for auth failures either');
  t.same(guard.list(), []);
  t.equal(send('2001:db9::5', 6), 5, 'just outside the IPv6 network: limited');
});

t.test('auth failures: max within the window bans; spread out they do not', async (t) => {
  const { guard, clock, lines } = setup();
  guard.authFailed('192.0.2.7');
  guard.authFailed('192.0.2.7');
  t.ok(guard.admit('192.0.2.7', REQ), 'two failures: still admitted');
  clock.now += 300_000;
  guard.authFailed('192.0.2.7');
  t.ok(guard.admit('192.0.2.7', REQ), 'the third came after the window: counting started again');
  guard.authFailed('192.0.2.7');
  guard.authFailed('192.0.2.7');
  t.notOk(guard.admit('192.0.2.7', REQ), 'three within the window: banned');
  t.same(guard.list(), [{ address: '192.0.2.7', reason: 'auth-failures', until: clock.now + 900_000 }]);
  t.match(lines.find((l) => l.msg === 'source address banned'), { reason: 'auth-failures', failures: 3, seconds: 300 });
  t.ok(guard.admit('192.0.2.8', REQ), 'another address is not affected');
  t.equal(guard.stats.dropped.get('auth-failures'), 1);
  clock.now += 900_000;
  t.ok(guard.admit('192.0.2.7', REQ), 'the ban ends');
});

t.test('a ban held in the store applies to a source the table has not seen (restart, eviction)', async (t) => {
  const { guard, bans, clock } = setup();
  bans.put({ address: '198.51.100.9', reason: 'auth-failures', until: clock.now + 5000 });
  t.notOk(guard.admit('198.51.100.9', REQ));
  t.equal(guard.stats.dropped.get('auth-failures'), 1);
});

t.test('the table of sources is bounded; bans survive eviction', async (t) => {
  const { guard, send, clock } = setup(SETTINGS, 100);
  send('192.0.2.1', 6);
  for (let i = 0; i < 10_000; i++) guard.admit(`198.18.${i >> 8}.${i & 255}`, REQ);
  t.equal(guard.stats.sources, 100, 'a flood of spoofed sources keeps at most maxSources entries');
  t.notOk(guard.admit('192.0.2.1', REQ), 'the banned source, evicted long ago, is still banned');
  clock.now += 2000;
  guard.sweep();
  t.equal(guard.stats.sources, 1, 'the sweep drops idle sources (the banned one stays)');
  clock.now += 60_000;
  guard.sweep();
  t.equal(guard.stats.sources, 0);
  t.equal(guard.stats.activeBans, 0);
});

t.test('the ban store is bounded too', async (t) => {
  const bans = new MemoryBans(3);
  for (let i = 0; i < 5; i++) bans.put({ address: `192.0.2.${i}`, reason: 'flood', until: 1000 + i });
  t.equal(bans.size, 3);
  t.same([...bans.all()].map((b) => b.address), ['192.0.2.2', '192.0.2.3', '192.0.2.4'], 'the oldest went first');
  t.equal(bans.expire(1003), 1);
});

t.test('the ban log is rate-bounded', async (t) => {
  const { guard, lines } = setup({ ...SETTINGS, floodLimit: { requests: 1, seconds: 2, ban: 60 } });
  for (let i = 0; i < 500; i++) {
    const a = `198.19.${i >> 8}.${i & 255}`;
    guard.admit(a, REQ);
    guard.admit(a, REQ);
  }
  t.equal(guard.stats.bans.get('flood'), 500, '500 bans');
  t.equal(lines.filter((l) => l.msg === 'source address banned').length, 20, 'but 20 lines in the window');
});

t.test('a new configuration applies at once (SIGHUP)', async (t) => {
  const { guard, send } = setup();
  send('192.0.2.1', 6);
  t.notOk(guard.admit('192.0.2.1', REQ));
  guard.configure({ ...SETTINGS, trusted: [...SETTINGS.trusted, { address: '192.0.2.0', prefix: 24 }] });
  t.ok(guard.admit('192.0.2.1', REQ), 'now trusted: its ban is gone');
  t.same(guard.list(), []);
  guard.configure({ ...SETTINGS, floodLimit: { requests: 2, seconds: 2, ban: 60 } });
  t.equal(send('192.0.2.9', 3), 2, 'the new limit');
});

t.test('a ban made or lifted elsewhere (another instance) applies to a source already counted', async (t) => {
  const { guard, send, clock, bans } = setup();
  t.equal(send('192.0.2.7', 2), 2, 'counted, not banned');
  bans.put({ address: '192.0.2.7', reason: 'auth-failures', until: clock.now + 900_000 });
  t.equal(send('192.0.2.7', 1), 1, 'the cached counters do not know of the ban yet');
  guard.refresh('192.0.2.7');
  t.equal(send('192.0.2.7', 1), 0, 'after refresh: dropped');
  t.equal(guard.stats.dropped.get('auth-failures'), 1, 'counted under the stored reason');
  bans.remove('192.0.2.7');
  guard.refresh('192.0.2.7');
  t.equal(send('192.0.2.7', 1), 1, 'lifted elsewhere: admitted again');
  bans.put({ address: '10.1.2.3', reason: 'flood', until: clock.now + 60_000 });
  guard.refresh('10.1.2.3');
  t.equal(send('10.1.2.3', 1), 1, 'a trusted source is never banned');
});
