import t from 'tap';
import { createHash } from 'node:crypto';
import {
  NonceManager,
  challenge,
  parseDigestCredentials,
  verifyResponse,
  type DigestCredentials,
} from '../../src/auth/digest.js';

// RFC 7616 §3.9.1: the "Mufasa" / "Circle of Life" example.
const RFC7616 = {
  username: 'Mufasa',
  realm: 'http-auth@example.org',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  uri: '/dir/index.html',
  qop: 'auth',
  nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
};
const PASSWORD = 'Circle of Life';

function rfc7616Header(algorithm: string, response: string): string {
  const r = RFC7616;
  return (
    `Digest username="${r.username}", realm="${r.realm}", uri="${r.uri}", algorithm=${algorithm}, ` +
    `nonce="${r.nonce}", nc=${r.nc}, cnonce="${r.cnonce}", qop=${r.qop}, ` +
    `response="${response}", opaque="${r.opaque}"`
  );
}

t.test('RFC 7616 §3.9.1 vectors', async (t) => {
  const md5 = parseDigestCredentials(rfc7616Header('MD5', '8ca523f5e9506fed4657c9700eebdbec'));
  t.ok(md5, 'MD5 example parses');
  t.same(md5, { ...RFC7616, algorithm: 'MD5', response: '8ca523f5e9506fed4657c9700eebdbec' });
  t.equal(verifyResponse(md5!, PASSWORD, 'GET'), true, 'MD5 response verifies');

  const sha = parseDigestCredentials(
    rfc7616Header('SHA-256', '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1'),
  );
  t.ok(sha, 'SHA-256 example parses');
  t.equal(verifyResponse(sha!, PASSWORD, 'GET'), true, 'SHA-256 response verifies');

  t.equal(verifyResponse(md5!, 'Circle of life', 'GET'), false, 'wrong password (MD5)');
  t.equal(verifyResponse(sha!, 'Circle of life', 'GET'), false, 'wrong password (SHA-256)');
  t.equal(verifyResponse(md5!, PASSWORD, 'POST'), false, 'wrong method');
  t.equal(verifyResponse({ ...sha!, algorithm: 'MD5' }, PASSWORD, 'GET'), false, 'algorithm swapped');
  t.equal(verifyResponse({ ...md5!, algorithm: 'md5' }, PASSWORD, 'GET'), true, 'algorithm case-insensitive');
  t.equal(
    verifyResponse({ ...md5!, response: md5!.response.toUpperCase() }, PASSWORD, 'GET'),
    true,
    'upper-case hex response accepted',
  );
  t.equal(verifyResponse({ ...md5!, response: md5!.response.slice(1) }, PASSWORD, 'GET'), false, 'short response');
  t.equal(verifyResponse({ ...md5!, response: '' }, PASSWORD, 'GET'), false, 'empty response');
});

t.test('RFC 2617 §3.5 (qop=auth) and RFC 2069 (no qop, errata value)', async (t) => {
  const base = {
    username: 'Mufasa',
    realm: 'testrealm@host.com',
    nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
    uri: '/dir/index.html',
  };
  const c2617 = parseDigestCredentials(
    `Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", ` +
      `uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", ` +
      `response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
  );
  t.ok(c2617);
  t.equal(verifyResponse(c2617!, 'Circle Of Life', 'GET'), true);

  const c2069: DigestCredentials = { ...base, algorithm: 'MD5', response: '1949323746fe6a43ef61f9606e7febea' };
  t.equal(verifyResponse(c2069, 'CircleOfLife', 'GET'), true, 'no qop: H(HA1:nonce:HA2)');
  t.equal(verifyResponse(c2069, 'Circle Of Life', 'GET'), false);
});

t.test('SIP REGISTER with a live nonce', async (t) => {
  const nonces = new NonceManager({ secret: Buffer.alloc(32, 7) });
  const nonce = nonces.issue();
  const realm = 'pbx.example.test';
  const uri = 'sip:127.0.0.1:5060'; // what SIPp puts there
  const cnonce = '6b8b4567';
  for (const [algorithm, hash] of [
    ['MD5', 'md5'],
    ['SHA-256', 'sha256'],
  ] as const) {
    const h = (s: string) => createHash(hash).update(s).digest('hex');
    const ha1 = h(`anna-desk:${realm}:secret-3`);
    const ha2 = h(`REGISTER:${uri}`);
    const response = h(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`);
    const header =
      `Digest username="anna-desk",realm="${realm}",nonce="${nonce}",uri="${uri}",` +
      `response="${response}",algorithm=${algorithm},cnonce="${cnonce}",qop=auth,nc=00000001`;
    const creds = parseDigestCredentials(header);
    t.ok(creds, `${algorithm}: parses`);
    t.equal(creds!.algorithm, algorithm);
    t.equal(verifyResponse(creds!, 'secret-3', 'REGISTER'), true, `${algorithm}: right password`);
    t.equal(verifyResponse(creds!, 'secret-4', 'REGISTER'), false, `${algorithm}: wrong password`);
    t.equal(verifyResponse(creds!, 'secret-3', 'INVITE'), false, `${algorithm}: other method`);
  }
  const c = challenge(realm, 'MD5', nonce);
  t.equal(c, `Digest realm="pbx.example.test", nonce="${nonce}", algorithm=MD5, qop="auth"`);
});

t.test('verifyResponse refuses what it does not support', async (t) => {
  const good = parseDigestCredentials(rfc7616Header('MD5', '8ca523f5e9506fed4657c9700eebdbec'))!;
  t.equal(verifyResponse({ ...good, algorithm: 'MD5-sess' }, PASSWORD, 'GET'), false, 'MD5-sess');
  t.equal(verifyResponse({ ...good, algorithm: 'SHA-256-sess' }, PASSWORD, 'GET'), false, 'SHA-256-sess');
  t.equal(verifyResponse({ ...good, algorithm: 'SHA-512-256' }, PASSWORD, 'GET'), false, 'SHA-512-256');
  t.equal(verifyResponse({ ...good, qop: 'auth-int' }, PASSWORD, 'GET'), false, 'auth-int');
  const { nc: _nc, ...noNc } = good;
  t.equal(verifyResponse(noNc, PASSWORD, 'GET'), false, 'qop without nc');
  const { cnonce: _cn, ...noCnonce } = good;
  t.equal(verifyResponse(noCnonce, PASSWORD, 'GET'), false, 'qop without cnonce');
});

t.test('parser edge cases', async (t) => {
  const min = 'username="u", realm="r", nonce="n", uri="sip:x", response="abc"';

  t.same(parseDigestCredentials(`Digest ${min}`), {
    username: 'u',
    realm: 'r',
    nonce: 'n',
    uri: 'sip:x',
    response: 'abc',
    algorithm: 'MD5',
  }, 'algorithm defaults to MD5, optional fields absent');

  t.equal(parseDigestCredentials(`dIgEsT ${min}`)?.username, 'u', 'scheme is case-insensitive');
  t.equal(
    parseDigestCredentials('Digest USERNAME="u", Realm="r", NONCE="n", Uri="sip:x", RESPONSE="abc"')?.realm,
    'r',
    'parameter names are case-insensitive',
  );

  const escaped = parseDigestCredentials(String.raw`Digest username="a\"b\\c", realm="r", nonce="n", uri="sip:x", response="abc"`);
  t.equal(escaped?.username, 'a"b\\c', 'quoted-pair: \\" and \\\\');

  const commaInQuotes = parseDigestCredentials('Digest username="a, b=c", realm="r", nonce="n", uri="sip:x", response="abc"');
  t.equal(commaInQuotes?.username, 'a, b=c', 'comma and = inside quotes are data');

  const reordered = parseDigestCredentials(
    'Digest nc=00000002, response="abc", qop=auth, uri="sip:x", cnonce="cn", nonce="n", realm="r", username="u", algorithm=SHA-256',
  );
  t.same(reordered, {
    username: 'u',
    realm: 'r',
    nonce: 'n',
    uri: 'sip:x',
    response: 'abc',
    algorithm: 'SHA-256',
    qop: 'auth',
    nc: '00000002',
    cnonce: 'cn',
  }, 'any order');

  const spacey = parseDigestCredentials(
    '  Digest   username = "u" ,realm="r" ,\t nonce\t=\t"n",\r\n uri="sip:x",response="abc" , ',
  );
  t.equal(spacey?.nonce, 'n', 'LWS around = and , (incl. folding), trailing comma');

  t.equal(parseDigestCredentials(`Digest ${min}, qop="auth"`)?.qop, 'auth', 'quoted qop tolerated');
  t.equal(parseDigestCredentials(`Digest ${min}, cnonce=ab/c+d==`)?.cnonce, 'ab/c+d==', 'lenient unquoted value');
  t.equal(parseDigestCredentials(`Digest ${min}, foo="bar", baz=1`)?.username, 'u', 'unknown params ignored');
  t.equal(parseDigestCredentials(`Digest ${min}, __proto__="x"`)?.username, 'u', '__proto__ is just a name');
  t.equal(parseDigestCredentials(`Digest ${min},, ,opaque="o"`)?.opaque, 'o', 'empty list elements skipped');
  t.equal(parseDigestCredentials('Digest username="", realm="", nonce="", uri="", response=""')?.username, '', 'empty quoted values');

  const bad: Array<[string, string]> = [
    ['', 'empty'],
    ['Digest', 'scheme only'],
    ['Digest ', 'no params'],
    [`Basic ${min}`, 'other scheme'],
    [`Digestusername="u"`, 'no space after scheme'],
    [`Digest,${min}`, 'comma after scheme'],
    ['Digest username="u", realm="r", nonce="n", uri="sip:x"', 'response missing'],
    ['Digest realm="r", nonce="n", uri="sip:x", response="abc"', 'username missing'],
    [`Digest ${min}, realm="r2"`, 'duplicate parameter'],
    [`Digest ${min}, opaque="unterminated`, 'unterminated quote'],
    [`Digest ${min}, opaque="ends in backslash\\`, 'dangling backslash'],
    [`Digest ${min}, opaque`, 'name without ='],
    [`Digest ${min}, opaque=`, 'name with = and no value'],
    [`Digest ${min}, ="x"`, 'value without name'],
    [`Digest ${min} opaque="x"`, 'missing comma'],
    [`Digest ${min}, opaque="x"y`, 'junk after quoted value'],
    [`Digest ${min}, opa"que="x"`, 'quote inside name'],
    [`Digest ${min}, opaque=ab"c`, 'quote inside token value'],
    [`Digest ${min}, opaque="a\u0000b"`, 'NUL in quoted value'],
    [`Digest ${min}, opaque="a\nb"`, 'LF in quoted value'],
    ['\u0000\u0001\u0002', 'binary garbage'],
    ['Digest ================', 'equals signs'],
    ['Digest """"""""""', 'quotes'],
  ];
  for (const [input, why] of bad) t.equal(parseDigestCredentials(input), undefined, why);

  t.equal(parseDigestCredentials(123 as unknown as string), undefined, 'non-string input');

  const huge = `Digest ${min}, opaque="${'x'.repeat(5000)}"`;
  t.equal(parseDigestCredentials(huge), undefined, 'over 4 KiB refused');
  t.equal(parseDigestCredentials(`Digest ${' '.repeat(64_000)}${min}`), undefined, '64,000 spaces refused');
  // Pathological inputs under the bound are one linear pass (no backtracking).
  const start = process.hrtime.bigint();
  for (let k = 0; k < 100; k++) {
    parseDigestCredentials(`Digest ${' '.repeat(4000)}`);
    parseDigestCredentials(`Digest a="${'\\'.repeat(1900)}`);
    parseDigestCredentials(`Digest ${'a=b,'.repeat(1000)}`);
  }
  t.ok(process.hrtime.bigint() - start < 500_000_000n, '300 near-4 KiB pathological inputs in well under 0.5 s');

  const justUnder = `Digest ${min}, opaque="${'x'.repeat(4000)}"`;
  t.ok(justUnder.length <= 4096);
  t.equal(parseDigestCredentials(justUnder)?.opaque?.length, 4000, 'just under 4 KiB accepted');
});

t.test('challenge header', async (t) => {
  t.equal(
    challenge('pbx.example.test', 'SHA-256', 'abc', { stale: true, opaque: 'op' }),
    'Digest realm="pbx.example.test", nonce="abc", opaque="op", algorithm=SHA-256, qop="auth", stale=true',
  );
  t.equal(challenge('r', 'MD5', 'n', { stale: false }), 'Digest realm="r", nonce="n", algorithm=MD5, qop="auth"');
  t.equal(challenge('a"b\\c', 'MD5', 'n'), String.raw`Digest realm="a\"b\\c", nonce="n", algorithm=MD5, qop="auth"`);
  t.throws(() => challenge('r\r\nX-Evil: 1', 'MD5', 'n'), TypeError, 'CRLF refused');

  // What we emit, our own parser reads back (as a phone would, modulo the scheme params).
  const parsed = parseDigestCredentials(`${challenge('r', 'MD5', 'n')}, username="u", uri="sip:x", response="x"`);
  t.equal(parsed?.realm, 'r');
});

t.test('NonceManager: ok, stale, invalid, tampered', async (t) => {
  let clock = 1_700_000_000_000;
  const secret = Buffer.alloc(32, 1);
  const nm = new NonceManager({ secret, lifetimeSec: 300, now: () => clock });
  const nonce = nm.issue();
  t.match(nonce, /^[A-Za-z0-9_-]{43}$/, '43 base64url characters, safe inside quotes');
  t.not(nm.issue(), nonce, 'each nonce is different');

  t.equal(nm.check(nonce), 'ok', 'fresh');
  t.equal(new NonceManager({ secret, now: () => clock }).check(nonce), 'ok', 'another instance with the same secret accepts it');
  t.equal(new NonceManager({ secret: Buffer.alloc(32, 2), now: () => clock }).check(nonce), 'invalid', 'other secret: invalid');
  t.equal(new NonceManager().check(nonce), 'invalid', 'random secret: invalid');

  clock += 299_999;
  t.equal(nm.check(nonce), 'ok', 'just within the lifetime');
  clock += 1;
  t.equal(nm.check(nonce), 'stale', 'at the lifetime: stale');
  t.equal(nm.check(nonce, '00000001'), 'stale', 'stale with nc too');
  clock -= 300_000;

  // Flip one character of each region: timestamp, random, MAC.
  for (const pos of [0, 5, 10, 20, 30, 41]) {
    const c = nonce[pos] === 'A' ? 'B' : 'A';
    const tampered = nonce.slice(0, pos) + c + nonce.slice(pos + 1);
    t.equal(nm.check(tampered), 'invalid', `tampered at ${pos}`);
  }
  // Forge a fresh timestamp on an old nonce: the MAC covers it.
  const bytes = Buffer.from(nonce, 'base64url');
  bytes.writeUIntBE(clock + 1_000_000, 0, 6);
  t.equal(nm.check(bytes.toString('base64url')), 'invalid', 'rewritten timestamp');

  for (const junk of ['', 'abc', nonce + 'A', nonce.slice(1), '!'.repeat(43), `${nonce.slice(0, 42)}=`]) {
    t.equal(nm.check(junk), 'invalid', `junk ${JSON.stringify(junk)}`);
  }
  // Non-canonical spelling of the same bytes (last char's low bits are ignored by the decoder).
  const last = nonce[42]!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const idx = alphabet.indexOf(last);
  const alias = nonce.slice(0, 42) + alphabet[idx ^ 1];
  t.equal(Buffer.from(alias, 'base64url').equals(Buffer.from(nonce, 'base64url')), true, 'alias decodes the same');
  t.equal(nm.check(alias), 'invalid', 'non-canonical alias refused');
});

t.test('NonceManager: nc replay protection', async (t) => {
  let clock = 1_700_000_000_000;
  const nm = new NonceManager({ now: () => clock });
  const a = nm.issue();
  const b = nm.issue();

  t.equal(nm.check(a, '00000001'), 'ok', 'nc 1');
  t.equal(nm.check(a, '00000001'), 'invalid', 'nc 1 replayed');
  t.equal(nm.check(a, '00000002'), 'ok', 'nc 2');
  t.equal(nm.check(a, '00000005'), 'ok', 'nc may skip ahead');
  t.equal(nm.check(a, '00000003'), 'invalid', 'nc going back');
  t.equal(nm.check(a, '0000000A'), 'ok', 'hex, upper case');
  t.equal(nm.check(a, '0000000a'), 'invalid', 'same nc in lower case is a replay');
  t.equal(nm.check(b, '00000001'), 'ok', 'nc is tracked per nonce');

  for (const bad of ['1', '000000001', '0000000g', '', ' 0000001']) {
    t.equal(nm.check(b, bad), 'invalid', `malformed nc ${JSON.stringify(bad)}`);
  }
  t.equal(nm.check(b, '00000002'), 'ok', 'malformed nc did not disturb the count');
  t.equal(nm.check(b), 'ok', 'no nc (RFC 2069 client): validity only');

  // Bounded memory: with room for one nonce, tracking a second evicts the first.
  const small = new NonceManager({ now: () => clock, maxTracked: 1 });
  const x = small.issue();
  const y = small.issue();
  t.equal(small.check(x, '00000001'), 'ok');
  t.equal(small.check(y, '00000001'), 'ok');
  t.equal(small.check(y, '00000001'), 'invalid', 'most recent still tracked');

  clock += 300_000;
  t.equal(nm.check(a, '000000ff'), 'stale', 'expired nonce is stale, not ok');
});
