/**
 * The malformed and hostile message corpus, shared by test/unit/sip-hostile.test.ts (the
 * parser directly) and test/e2e/torture.test.ts (through a running proxy). Deterministic: a
 * seeded PRNG, so a failing case can be regenerated from its name.
 *
 * Every request carries `Via: SIP/2.0/UDP <host>:<port>;rport;branch=z9hG4bK<tag>X` and
 * `Call-ID: hostile-<tag>@<host>`, so that the proxy's answer (if any) comes back to the sender
 * and names its case. Tags are "h<index>", except the truncations of one template, which share
 * "tinv" / "topt" (their Call-ID may be cut off).
 */

export type Expect =
  /** parseMessage must reject it; a proxy answers 400 or nothing. */
  | 'parse-error'
  /** parses, but a required header is missing or unusable: a proxy answers 400 or nothing. */
  | 'reject-400'
  /** random or mutated bytes: anything but a crash, a hang or a 2xx to garbage. */
  | 'any';

export interface HostileCase {
  name: string;
  data: Buffer;
  expect: Expect;
  tag: string;
  /** The Via survives intact, so a proxy that received it must answer 400. */
  must400: boolean;
}

export interface CorpusOptions {
  /** sent-by of the Via (where the proxy answers). */
  viaHost: string;
  viaPort: number;
  /** Random cases (default 3000) and mutated valid messages (default 1000). */
  random?: number;
  mutated?: number;
  seed?: number;
}

/** mulberry32 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** The largest UDP payload over IPv4. */
export const MAX_DATAGRAM = 65507;

export function buildCorpus(o: CorpusOptions): HostileCase[] {
  const cases: HostileCase[] = [];
  const add = (name: string, data: Buffer | string, expect: Expect, must400 = false, tag = `h${cases.length}`) => {
    cases.push({ name, data: typeof data === 'string' ? Buffer.from(data, 'latin1') : data, expect, tag, must400 });
  };
  const via = (i: number | string) => `Via: SIP/2.0/UDP ${o.viaHost}:${o.viaPort};rport;branch=z9hG4bK${typeof i === 'number' ? `h${i}` : i}X`;
  /** The index the next case will get (its tag). */
  const next = () => cases.length;
  const common = (i: number | string, method = 'OPTIONS') => [
    via(i),
    'Max-Forwards: 70',
    `From: <sip:hostile@${o.viaHost}>;tag=f${i}`,
    'To: <sip:127.0.0.1>',
    `Call-ID: hostile-${typeof i === 'number' ? `h${i}` : i}@${o.viaHost}`,
    `CSeq: 1 ${method}`,
  ];
  const lines = (start: string, hs: string[], body = '') => `${start}\r\n${hs.join('\r\n')}\r\n\r\n${body}`;

  // --- Truncated at every offset: an INVITE with a body and an OPTIONS without one.
  const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.42\r\ns=-\r\nc=IN IP4 127.0.0.42\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  for (const [tag, method, body] of [
    ['tinv', 'INVITE', sdp],
    ['topt', 'OPTIONS', ''],
  ] as const) {
    const full = lines(`${method} sip:100@127.0.0.1 SIP/2.0`, [...common(tag, method), 'Content-Type: application/sdp', `Content-Length: ${body.length}`], body);
    // Cut anywhere after the Via line's text, the proxy can still answer.
    const viaEnd = full.indexOf('\r\n', full.indexOf('Via:'));
    for (let cut = 1; cut < full.length; cut++) add(`truncated ${method} at ${cut}/${full.length}`, full.slice(0, cut), 'parse-error', cut >= viaEnd, tag);
  }

  // --- Content-Length lies.
  const clCase = (name: string, cl: string[], body: string) => {
    const i = next();
    add(`Content-Length ${name}`, lines('MESSAGE sip:100@127.0.0.1 SIP/2.0', [...common(i, 'MESSAGE'), 'Content-Type: text/plain', ...cl], body), 'parse-error', true);
  };
  clCase('larger by one', ['Content-Length: 6'], 'hello');
  clCase('larger by 100', ['Content-Length: 105'], 'hello');
  clCase('65535', ['Content-Length: 65535'], 'hello');
  clCase('negative', ['Content-Length: -1'], 'hello');
  clCase('negative large', ['Content-Length: -99999'], 'hello');
  clCase('huge', ['Content-Length: 99999999999999999999'], 'hello');
  clCase('2^32', ['Content-Length: 4294967296'], 'hello');
  clCase('2^32+5', ['Content-Length: 4294967301'], 'hello');
  clCase('non-numeric', ['Content-Length: five'], 'hello');
  clCase('digits then junk', ['Content-Length: 5abc'], 'hello');
  clCase('hex', ['Content-Length: 0x5'], 'hello');
  clCase('float', ['Content-Length: 5.0'], 'hello');
  clCase('plus sign', ['Content-Length: +5'], 'hello');
  clCase('empty', ['Content-Length:'], 'hello');
  clCase('two values in one header', ['Content-Length: 5, 5'], 'hello');
  clCase('two values, space separated', ['Content-Length: 5 5'], 'hello');
  clCase('two headers', ['Content-Length: 5', 'Content-Length: 5'], 'hello');
  clCase('two headers, compact and long', ['l: 5', 'Content-Length: 5'], 'hello');
  clCase('two different headers', ['Content-Length: 2', 'Content-Length: 5'], 'hello');
  clCase('NUL in the value', ['Content-Length: 5\0'], 'hello');

  // --- Whitespace.
  add('65000 spaces', ' '.repeat(65000), 'parse-error');
  add('65000 tabs', '\t'.repeat(65000), 'parse-error');
  add('65000 spaces and CRLF', ' '.repeat(64998) + '\r\n', 'parse-error');
  add('64 KiB of whitespace (too large for UDP; parser only)', ' \t'.repeat(32768), 'parse-error');
  {
    const i = next();
    add('start line padded with 60000 spaces', lines(`OPTIONS ${' '.repeat(60000)}sip:127.0.0.1 SIP/2.0`, [...common(i), 'l: 0']), 'parse-error');
  }
  {
    const i = next();
    // Lots of whitespace around a colon and in a value: valid syntax, but no Call-ID.
    const hs = common(i).filter((h) => !h.startsWith('Call-ID'));
    add('60000 spaces in a header value, no Call-ID', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...hs, `Subject:${' '.repeat(60000)}x`, 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    const hs = common(i).filter((h) => !h.startsWith('Call-ID'));
    add('60000 spaces before a colon, no Call-ID', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...hs, `Subject${' '.repeat(60000)}: x`, 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    const hs = common(i).filter((h) => !h.startsWith('Call-ID'));
    add('12000 folded continuation lines, no Call-ID', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...hs, 'Subject: x' + '\r\n y'.repeat(12000), 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    add('60000 spaces between headers and body', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(i), 'l: 0']).replace('\r\n\r\n', '\r\n' + ' '.repeat(60000) + '\r\n\r\n'), 'parse-error', true);
  }

  // --- NUL bytes.
  {
    add('NUL in the method', lines('OPT\0IONS sip:127.0.0.1 SIP/2.0', [...common(next()), 'l: 0']), 'parse-error');
    add('NUL in the Request-URI', lines('OPTIONS sip:127.0.0.1\0 SIP/2.0', [...common(next()), 'l: 0']), 'parse-error', true);
    add('NUL in the version', lines('OPTIONS sip:127.0.0.1 SIP/2.0\0', [...common(next()), 'l: 0']), 'parse-error', true);
    add('NUL at the start', '\0' + lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), 'l: 0']), 'parse-error');
    add('NUL in a header value', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), 'Subject: a\0b', 'l: 0']), 'parse-error', true);
    add('NUL in the Call-ID', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()).map((h) => (h.startsWith('Call-ID') ? h + '\0x' : h)), 'l: 0']), 'parse-error', true);
    add('NUL in a header name', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), 'Sub\0ject: a', 'l: 0']), 'parse-error', true);
    add('NUL line', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), '\0', 'l: 0']), 'parse-error', true);
    add('NUL in the Via', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()).map((h) => (h.startsWith('Via') ? h + ';x=\0' : h)), 'l: 0']), 'parse-error');
    add('60000 NULs', Buffer.alloc(60000, 0), 'parse-error');
    const i = next();
    add('60000 NULs in a header value', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(i), 'X-Nul: ' + '\0'.repeat(60000), 'l: 0']), 'parse-error', true);
  }

  // --- Huge header values (60 KB).
  {
    const i = next();
    const hs = common(i).filter((h) => !h.startsWith('Call-ID'));
    add('60 KB unknown header value, no Call-ID', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...hs, 'X-Big: ' + 'a'.repeat(60000), 'l: 0']), 'reject-400', true);
  }
  add('60 KB Via value of garbage', lines('OPTIONS sip:127.0.0.1 SIP/2.0', ['Via: ' + 'x'.repeat(60000), ...common(next()).slice(1), 'l: 0']), 'reject-400');
  {
    const i = next();
    add('60 KB CSeq number', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(i).filter((h) => !h.startsWith('CSeq')), `CSeq: ${'9'.repeat(60000)} OPTIONS`, 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    add('60 KB Max-Forwards', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(i).filter((h) => !h.startsWith('Max-Forwards')), `Max-Forwards: ${'7'.repeat(60000)}`, 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    add('60 KB From with an unterminated quote', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(i).filter((h) => !h.startsWith('From')), `From: "${'\\"'.repeat(30000)} <sip:a@b>;tag=1`, 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    add('60 KB To of open angle brackets', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(i).filter((h) => !h.startsWith('To')), `To: ${'<'.repeat(60000)}`, 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    // Loop detection parses every Via: 30000 commas is 30000 (empty or bogus) values.
    add('Via with 30000 commas, no Call-ID', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [via(i) + ','.repeat(15000) + ' x,'.repeat(5000), ...common(i).slice(1).filter((h) => !h.startsWith('Call-ID')), 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    add('Via with 20000 parameters, no Call-ID', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [via(i) + ';a'.repeat(20000), ...common(i).slice(1).filter((h) => !h.startsWith('Call-ID')), 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    add('Request-URI of 8000 parameters', lines(`OPTIONS sip:127.0.0.1${';p'.repeat(4000)} SIP/2.0`, [...common(i).filter((h) => !h.startsWith('Call-ID')), 'l: 0']), 'reject-400', true);
  }
  {
    const i = next();
    add('Contact with 10000 values, no Call-ID', lines('REGISTER sip:127.0.0.1 SIP/2.0', [...common(i, 'REGISTER').filter((h) => !h.startsWith('Call-ID')), 'Contact: ' + Array.from({ length: 10000 }, (_, k) => `<sip:${k}@h>`).join(',').slice(0, 60000), 'l: 0']), 'reject-400', true);
  }

  // --- Many tiny headers.
  add('10000 tiny headers', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), ...Array.from({ length: 10000 }, () => 'a:b'), 'l: 0']), 'parse-error');
  add('10000 empty headers', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), ...Array.from({ length: 10000 }, () => 'X:'), 'l: 0']), 'parse-error');
  add('10000 tiny Via headers', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), ...Array.from({ length: 10000 }, () => 'v:x'), 'l: 0']), 'parse-error');
  add('20000 lines without a colon', lines('OPTIONS sip:127.0.0.1 SIP/2.0', [...common(next()), ...Array.from({ length: 20000 }, () => 'x'), 'l: 0']), 'parse-error', true);
  add('30000 bare LFs as headers', 'OPTIONS sip:127.0.0.1 SIP/2.0\r\n' + via(next()) + '\r\n' + 'a\n'.repeat(30000), 'parse-error', true);

  // --- Only line ends.
  add('only CRLFs', '\r\n'.repeat(32000), 'parse-error');
  add('only LFs', '\n'.repeat(65000), 'parse-error');
  add('only CRs', '\r'.repeat(65000), 'parse-error');
  add('one CRLF', '\r\n', 'parse-error');
  add('double CRLF (keep-alive over UDP)', '\r\n\r\n', 'parse-error');
  add('empty datagram', Buffer.alloc(0), 'parse-error');

  // --- Start lines.
  add('start line only', 'OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n', 'reject-400');
  add('HTTP request', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'parse-error');
  add('status code 0', lines('SIP/2.0 000 Zero', [...common(next()), 'l: 0']), 'parse-error');
  add('status code 2^32+200', lines('SIP/2.0 4294967496 OK', [...common(next()), 'l: 0']), 'parse-error');
  add('start line of 9000 bytes', lines(`OPTIONS sip:${'a'.repeat(9000)}@127.0.0.1 SIP/2.0`, [...common(next()), 'l: 0']), 'parse-error');
  add('SIP/3.0 request', lines('OPTIONS sip:127.0.0.1 SIP/3.0', [...common(next()), 'l: 0']), 'parse-error', true);
  add('no Request-URI', lines('OPTIONS  SIP/2.0', [...common(next()), 'l: 0']), 'parse-error', true);

  // --- Random bytes (seeded), bounded sizes.
  const rnd = prng(o.seed ?? 4475);
  const nRandom = o.random ?? 3000;
  for (let k = 0; k < nRandom; k++) {
    const len = Math.floor(rnd() ** 2 * 4000);
    const b = Buffer.allocUnsafe(len);
    const mode = k % 3;
    for (let j = 0; j < len; j++) {
      // Mode 0: any byte; 1: printable with line ends; 2: SIP-ish alphabet.
      const r = rnd();
      b[j] = mode === 0 ? Math.floor(r * 256) : mode === 1 ? (r < 0.05 ? 10 : r < 0.1 ? 13 : 32 + Math.floor(r * 95)) : ':;,<>"\\ \r\n=@SIPsip/2.0'.charCodeAt(Math.floor(r * 24));
    }
    add(`random #${k} (mode ${mode}, ${len} bytes)`, b, 'any');
  }
  // --- Valid messages with a few random bytes changed, inserted or deleted.
  const nMutated = o.mutated ?? 1000;
  for (let k = 0; k < nMutated; k++) {
    const i = next();
    const method = k % 2 ? 'INVITE' : 'OPTIONS';
    const body = method === 'INVITE' ? sdp : '';
    const base = Buffer.from(lines(`${method} sip:100@127.0.0.1 SIP/2.0`, [...common(i, method), 'Content-Type: application/sdp', `Content-Length: ${body.length}`], body), 'latin1');
    const bytes = [...base];
    const edits = 1 + Math.floor(rnd() * 8);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * bytes.length);
      const r = rnd();
      const val = r < 0.3 ? Math.floor(rnd() * 256) : ':;,<>"\\ \r\n\0%@'.charCodeAt(Math.floor(rnd() * 14));
      if (r < 0.5) bytes[at] = val;
      else if (r < 0.8) bytes.splice(at, 0, val);
      else bytes.splice(at, 1);
    }
    add(`mutated ${method} #${k} (${edits} edits)`, Buffer.from(bytes), 'any');
  }
  return cases;
}

/**
 * The case tag a response names: its top Via branch, confirmed by its Call-ID when it has one
 * (a mutated message may have a damaged branch that names another case); truncations, and
 * cases sent without a Call-ID, by branch alone.
 */
export function caseTagOf(text: string): string | undefined {
  const b = /branch=z9hG4bK([a-z0-9]+)X/.exec(text)?.[1];
  if (b === undefined) return undefined;
  if (b === 'tinv' || b === 'topt') return b;
  const callId = /\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]*)/i.exec(text)?.[1];
  if (callId === undefined) return b;
  const c = /^hostile-([a-z0-9]+)@/.exec(callId)?.[1];
  return c === b ? b : undefined;
}
