/**
 * The malformed/hostile corpus against the parser directly (and the stream framer): every case
 * is rejected (or, for random bytes, at least survived), nothing throws, and no case takes
 * catastrophically long (a backtracking regex took about 2 s on one 64 KB datagram). The
 * per-case bound is 1 s because these machines' CPU speed swings up to 10x: it catches a
 * blow-up, not a slowdown; linear scaling is checked below as a ratio. The same corpus goes through a running proxy in test/e2e/torture.test.ts.
 */
import t from 'tap';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipMessage } from '../../src/sip/message.js';
import { parseCSeq, parseNameAddr, parseVia, tagOf } from '../../src/sip/headers.js';
import { parseUri } from '../../src/sip/uri.js';
import { buildResponse, rewrite, stripTopVia } from '../../src/sip/serialize.js';
import { StreamFramer } from '../../src/transport/framer.js';
import { buildCorpus, type HostileCase } from './hostile-corpus.js';

const BOUND_MS = 1000;

/** What the proxy reads of a message, and the messages it builds from it. */
function inspect(m: SipMessage): void {
  const vias = m.values('via');
  for (const v of vias) parseVia(v);
  m.header('call-id');
  const from = m.header('from');
  const to = m.header('to');
  if (from !== undefined) parseNameAddr(from);
  if (to !== undefined) parseNameAddr(to);
  tagOf(from);
  tagOf(to);
  parseCSeq(m.header('cseq'));
  m.header('max-forwards');
  m.header('proxy-require');
  for (const r of m.values('route')) parseNameAddr(r);
  for (const c of m.values('contact')) parseNameAddr(c);
  m.values('record-route');
  void m.body.length;
  if (m.isRequest) {
    parseUri(m.uri);
    buildResponse(m, 400, 'Bad Request', { toTag: 'x', topVia: vias[0] ?? 'SIP/2.0/UDP x' });
    rewrite(m, `${m.method} sip:x@127.0.0.1 SIP/2.0`, 'Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKy\r\n', undefined);
  } else {
    stripTopVia(m);
  }
}

/** The proxy's own checks before routing (proxy.ts onRequest): all must pass for a request to be routed. */
function routable(m: SipMessage): boolean {
  if (!m.isRequest) return false;
  const v = m.values('via')[0];
  if (!v || !parseVia(v)) return false;
  const from = m.header('from');
  const to = m.header('to');
  const cseq = parseCSeq(m.header('cseq'));
  if (m.header('call-id') === undefined || !from || !to || !cseq || cseq.method !== m.method) return false;
  if (!parseNameAddr(from) || !parseNameAddr(to)) return false;
  const mf = m.header('max-forwards');
  if (mf !== undefined && !(/^\d{1,3}$/.test(mf) && Number(mf) <= 255)) return false;
  return true;
}

const corpus: HostileCase[] = buildCorpus({ viaHost: '127.0.0.42', viaPort: 40000 });

t.test('parser: every case rejected or survived, each within the bound', async (t) => {
  const counts: Record<string, number> = {};
  let worst = { ms: 0, name: '' };
  let threw = 0;
  let wrong = 0;
  let randomAccepted = 0;
  for (const c of corpus) {
    counts[c.expect] = (counts[c.expect] ?? 0) + 1;
    const start = performance.now();
    let outcome: 'error' | 'ok-routable' | 'ok-unroutable';
    let answerable = false;
    try {
      const r = parseMessage(c.data);
      if (r.msg) inspect(r.msg);
      outcome = !r.ok ? 'error' : routable(r.msg) ? 'ok-routable' : 'ok-unroutable';
      // What the proxy needs to answer 400: a request with its headers indexed and a valid Via.
      const v = r.msg?.isRequest ? r.msg.values('via')[0] : undefined;
      answerable = v !== undefined && parseVia(v) !== undefined;
    } catch (err) {
      threw++;
      t.fail(`${c.name}: threw ${String(err)}`);
      continue;
    }
    const ms = performance.now() - start;
    if (ms > worst.ms) worst = { ms, name: c.name };
    if (ms > BOUND_MS) t.fail(`${c.name}: ${ms.toFixed(1)} ms > ${BOUND_MS} ms`);
    if (c.expect === 'parse-error' && outcome !== 'error') {
      wrong++;
      t.fail(`${c.name}: accepted by the parser (${outcome})`);
    }
    if (c.expect === 'reject-400' && outcome === 'ok-routable') {
      wrong++;
      t.fail(`${c.name}: would be routed`);
    }
    if (c.must400 && (!answerable || outcome === 'ok-routable')) {
      wrong++;
      t.fail(`${c.name}: a 400 cannot be formed (answerable ${answerable}, ${outcome})`);
    }
    if (c.expect === 'any' && c.name.startsWith('random') && outcome !== 'error') randomAccepted++;
  }
  t.equal(threw, 0, 'nothing threw');
  t.equal(wrong, 0, 'every malformed case rejected, a 400 can be formed where the Via survived');
  t.ok(corpus.filter((c) => c.must400).length > 500, `${corpus.filter((c) => c.must400).length} cases must get a 400`);
  t.equal(randomAccepted, 0, 'no random byte string parsed as a message');
  t.ok(worst.ms < BOUND_MS, `slowest case ${worst.ms.toFixed(2)} ms: ${worst.name}`);
  t.comment(`${corpus.length} cases: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}; slowest ${worst.ms.toFixed(2)} ms (${worst.name})`);
});

t.test('framer: every case framed or refused without throwing, within the bound', async (t) => {
  let worst = 0;
  let threw = 0;
  for (const c of corpus) {
    const start = performance.now();
    try {
      const f = new StreamFramer();
      for (const ev of f.push(c.data)) if (ev.kind === 'message') parseMessage(ev.data);
      // The same bytes again in 1 KB segments.
      const g = new StreamFramer();
      for (let i = 0; i < c.data.length; i += 1024) for (const ev of g.push(c.data.subarray(i, i + 1024))) if (ev.kind === 'message') parseMessage(ev.data);
    } catch (err) {
      threw++;
      t.fail(`${c.name}: framer threw ${String(err)}`);
    }
    const ms = performance.now() - start;
    worst = Math.max(worst, ms);
    if (ms > BOUND_MS) t.fail(`${c.name}: framing took ${ms.toFixed(1)} ms`);
  }
  t.equal(threw, 0);
  t.ok(worst < BOUND_MS, `slowest ${worst.toFixed(2)} ms`);
});

t.test('pathological shapes scale linearly (2x input, well under 4x time)', async (t) => {
  // Each shape at n and 2n: a quadratic algorithm would take ~4x; allow 3x plus noise.
  const shapes: Record<string, (n: number) => Buffer> = {
    'lines without colon': (n) => Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n' + 'x\r\n'.repeat(n) + '\r\n'),
    'folded lines': (n) => Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nSubject: a' + '\r\n b'.repeat(n) + '\r\n\r\n'),
    'Via commas': (n) => Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h' + ', x'.repeat(n) + '\r\n\r\n'),
    'Via params': (n) => Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h' + ';a=b'.repeat(n) + ';branch=z9hG4bK1\r\n\r\n'),
    'quoted escapes': (n) => Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nTo: "' + '\\"'.repeat(n) + '" <sip:a@b>;tag=1\r\n\r\n'),
  };
  for (const [name, make] of Object.entries(shapes)) {
    const time = (n: number) => {
      const b = make(n);
      let best = Infinity;
      for (let k = 0; k < 5; k++) {
        const s = performance.now();
        const r = parseMessage(b);
        if (r.msg) inspect(r.msg);
        best = Math.min(best, performance.now() - s);
      }
      return best;
    };
    time(1000); // warm up
    const small = time(6000);
    const large = time(12000);
    t.ok(large < 3 * small + 2, `${name}: ${small.toFixed(2)} ms -> ${large.toFixed(2)} ms`);
  }
});
