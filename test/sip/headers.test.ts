import t from 'tap';
import { parseCSeq, parseNameAddr, parseVia, tagOf } from '../../src/sip/headers.js';
import { getParam, hostPort, parseUri, unescapeUser } from '../../src/sip/uri.js';

t.test('parseUri', async (t) => {
  t.same(parseUri('sip:200@pbx.example.test'), { scheme: 'sip', user: '200', host: 'pbx.example.test', port: 0, params: '' });
  t.same(parseUri('SIPS:Alice:secret@EXAMPLE.com:5061;transport=tcp;lr?subject=x'), {
    scheme: 'sips',
    user: 'Alice',
    host: 'example.com',
    port: 5061,
    params: ';transport=tcp;lr',
  });
  t.same(parseUri('sip:127.0.0.1'), { scheme: 'sip', user: '', host: '127.0.0.1', port: 0, params: '' });
  t.same(parseUri('sip:[2001:DB8::1]:5070;lr'), { scheme: 'sip', user: '', host: '2001:db8::1', port: 5070, params: ';lr' });
  t.same(parseUri('sip:u@[::1]'), { scheme: 'sip', user: 'u', host: '::1', port: 0, params: '' });
  // User parts holding ';' (RFC 4475 semiuri) and '?' / ':' (intmeth).
  t.match(parseUri('sip:user;par=u%40example.net@example.com'), { user: 'user;par=u%40example.net', host: 'example.com' });
  t.match(parseUri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"), {
    user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
    host: 'example.com',
  });
  // Escaped headers (RFC 4475 escruri): cut off, host intact.
  t.match(parseUri('sip:user@example.com?Route=%3Csip:example.com%3E'), { user: 'user', host: 'example.com', params: '' });
  t.match(parseUri('sip:host.example.com;maddr=x?h=1'), { user: '', host: 'host.example.com', params: ';maddr=x' });
  // Other schemes are carried, not routed.
  t.match(parseUri('tel:+49301234'), { scheme: 'tel', user: '+49301234', host: '' });
  t.match(parseUri('soap.beep://192.0.2.103:3002'), { scheme: 'soap.beep' });
  // Not URIs.
  for (const bad of ['', 'sip', ':x', 'sip:', 'sip:@', 'sip:u@', 'sip:u@h:', 'sip:u@h:0', 'sip:u@h:65536', 'sip:u@h:123456', 'sip:u@h x', 'sip:[::1', 'sip:u@ho$t', 'sip:u@h:50x', '<sip:user@example.com>']) {
    const u = parseUri(bad);
    t.ok(u === undefined || (u.scheme !== 'sip' && u.scheme !== 'sips'), `not a SIP URI: ${JSON.stringify(bad)}`);
  }
});

t.test('getParam', async (t) => {
  t.equal(getParam(';branch=z9hG4bK1;rport', 'branch'), 'z9hG4bK1');
  t.equal(getParam(';branch=z9hG4bK1;rport', 'rport'), '');
  t.equal(getParam(';branch=z9hG4bK1;rport', 'received'), undefined);
  t.equal(getParam(';BRANCH = z9hG4bK1 ; rport', 'branch'), 'z9hG4bK1', 'name case-insensitive, LWS around =');
  t.equal(getParam(';branchx=1;branch=2', 'branch'), '2', 'no prefix match');
  t.equal(getParam(';text="a;b";x=1', 'text'), 'a;b', 'quoted value');
  t.equal(getParam(';text="open', 'text'), 'open', 'unterminated quote does not throw');
  t.equal(getParam('', 'x'), undefined);
  t.equal(getParam(';', 'x'), undefined);
});

t.test('parseNameAddr and tagOf', async (t) => {
  t.same(parseNameAddr('"Alice A." <sip:alice@h>;tag=1;x'), { display: 'Alice A.', uri: 'sip:alice@h', params: ';tag=1;x' });
  t.same(parseNameAddr('Bob <sip:bob@h;transport=tcp>'), { display: 'Bob', uri: 'sip:bob@h;transport=tcp', params: '' });
  t.same(parseNameAddr('caller<sip:caller@example.com>;tag=323'), { display: 'caller', uri: 'sip:caller@example.com', params: ';tag=323' });
  t.same(parseNameAddr('sip:carol@h;tag=5'), { display: '', uri: 'sip:carol@h', params: ';tag=5' }, 'addr-spec: params are header params');
  t.same(parseNameAddr('<sip:[2001:db8::1]:5060>'), { display: '', uri: 'sip:[2001:db8::1]:5060', params: '' });
  t.equal(parseNameAddr('"Quoted \\"<x>\\"" <sip:q@h>')?.uri, 'sip:q@h', 'escaped quotes and <> inside the display name');
  t.equal(parseNameAddr('"Mr. J. User <sip:j.user@example.com>'), undefined, 'unterminated quote (RFC 4475 quotbal)');
  t.equal(parseNameAddr('<sip:open@h'), undefined);
  t.equal(parseNameAddr('<>'), undefined);
  t.equal(parseNameAddr('nocolon'), undefined);
  t.equal(parseNameAddr('"name" sip:x@h'), undefined);
  t.equal(parseNameAddr(''), undefined);
  t.equal(tagOf('<sip:a@b>;tag=abc'), 'abc');
  t.equal(tagOf('<sip:a@b;tag=uri>'), '', 'tag in the URI is no header tag');
  t.equal(tagOf('sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n'), '1918181833n');
  t.equal(tagOf(undefined), '');
  t.equal(tagOf('garbage'), '');
});

t.test('parseVia', async (t) => {
  t.same(parseVia('SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport'), {
    value: 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport',
    transport: 'UDP',
    host: '127.0.0.1',
    port: 5060,
    params: ';branch=z9hG4bK1;rport',
    branch: 'z9hG4bK1',
    rport: '',
    received: undefined,
    alone: false,
  });
  t.match(parseVia('sip/2.0/tcp Host.Example.COM;rport=5070;received=192.0.2.1;branch=z9hG4bKx'), {
    transport: 'TCP',
    host: 'host.example.com',
    port: 0,
    rport: '5070',
    received: '192.0.2.1',
    branch: 'z9hG4bKx',
  });
  t.match(parseVia('SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw'), { host: '192.0.2.2', branch: '390skdjuw' }, 'LWS around / (RFC 4475 wsinv)');
  t.match(parseVia('SIP/2.0/TCP spindle.example.com   ;  branch  =   z9hG4bK9ikj8'), { host: 'spindle.example.com', branch: 'z9hG4bK9ikj8' });
  t.match(parseVia('SIP/2.0/UDP [2001:db8::9]:5080;received=[2001:db8::10];branch=z9hG4bK6'), { host: '2001:db8::9', port: 5080, received: '[2001:db8::10]' });
  t.match(parseVia('SIP/2.0/UDP [2001:db8::9];branch=z9hG4bK6'), { host: '2001:db8::9', port: 0 });
  t.match(parseVia('SIP/2.0/UDP h;branch="quoted"'), { branch: 'quoted' });
  t.match(parseVia('SIP/2.0/UDP iftgw.example.com'), { branch: '', params: '' }, 'RFC 2543: no branch');
  for (const bad of [
    '',
    'SIP/2.0/UDP',
    'SIP/2.0/UDP ',
    'SIP/2.0 UDP h',
    'SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw', // RFC 4475 badvers
    'HTTP/2.0/UDP h',
    'SIP/2.0/UDP 192.0.2.15;;', // RFC 4475 badinv01
    'SIP/2.0/UDP h;=x',
    'SIP/2.0/UDP h;branch=',
    'SIP/2.0/UDP h;branch="open',
    'SIP/2.0/UDP h:',
    'SIP/2.0/UDP h:99999',
    'SIP/2.0/UDP h:123456',
    'SIP/2.0/UDP [::1;branch=z9hG4bK1',
    'SIP/2.0/UDP h garbage',
  ]) {
    t.equal(parseVia(bad), undefined, `rejected: ${JSON.stringify(bad)}`);
  }
});

t.test('parseCSeq', async (t) => {
  t.same(parseCSeq('1 INVITE'), { seq: 1, method: 'INVITE' });
  t.same(parseCSeq('0009 INVITE'), { seq: 9, method: 'INVITE' });
  t.same(parseCSeq('2147483647 BYE'), { seq: 2147483647, method: 'BYE' });
  t.same(parseCSeq("139122385 !interesting-Method0123456789_*+`.%indeed'~"), { seq: 139122385, method: "!interesting-Method0123456789_*+`.%indeed'~" });
  t.same(parseCSeq('5\tOPTIONS'), { seq: 5, method: 'OPTIONS' });
  for (const bad of [undefined, '', 'INVITE', '1', '1 ', '1INVITE', '-1 INVITE', '2147483648 INVITE', '36893488147419103232 REGISTER', '1 INV ITE', '1 INV(TE', 'x1 INVITE']) {
    t.equal(parseCSeq(bad), undefined, `rejected: ${JSON.stringify(bad)}`);
  }
});

t.test('hostPort and unescapeUser', async (t) => {
  t.equal(hostPort('127.0.0.1', 5060), '127.0.0.1:5060');
  t.equal(hostPort('2001:db8::1', 5060), '[2001:db8::1]:5060');
  t.equal(hostPort('h', 0), 'h');
  t.equal(unescapeUser('%32%30%30'), '200');
  t.equal(unescapeUser('sips%3Auser%40example.com'), 'sips:user@example.com');
  t.equal(unescapeUser('bad%zz'), 'bad%zz', 'invalid escape kept');
  t.equal(unescapeUser('%'), '%');
});

t.test('parseVia reads branch, rport and received in its validating pass', async (t) => {
  const { parseVia } = await import('../../src/sip/headers.js');
  const v = parseVia('SIP/2.0/UDP 10.0.0.1:5060;BRANCH=z9hG4bK-1 ;Rport;received=192.0.2.1;x="a;branch=no";branch=second');
  t.equal(v?.branch, 'z9hG4bK-1', 'name case-insensitive, the first one counts');
  t.equal(v?.rport, '', 'flag');
  t.equal(v?.received, '192.0.2.1');
  const q = parseVia('SIP/2.0/TCP [2001:db8::1]:5061;received=[2001:db8::9];rport=5062;branch="z9hG4bK-q"');
  t.equal(q?.received, '[2001:db8::9]');
  t.equal(q?.rport, '5062');
  t.equal(q?.branch, 'z9hG4bK-q', 'quoted value unquoted');
  const none = parseVia('SIP/2.0/UDP host');
  t.same([none?.branch, none?.rport, none?.received], ['', undefined, undefined]);
  t.equal(parseVia('SIP/2.0/UDP host;;branch=z9hG4bK-1'), undefined, 'empty parameter: malformed');
  t.equal(parseVia('SIP/2.0/UDP host;branch='), undefined, 'missing value: malformed');
  t.equal(parseVia('SIP/2.0/UDP host;branch="open'), undefined, 'unclosed quote: malformed');
});

t.test('isTokenCharCode is RFC 3261 token, by character code', async (t) => {
  const { isTokenCharCode } = await import('../../src/sip/chars.js');
  const token = new Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~");
  const wrong: number[] = [];
  for (let c = 0; c < 0x3000; c++) if (isTokenCharCode(c) !== token.has(String.fromCharCode(c))) wrong.push(c);
  t.same(wrong, [], 'every code below U+3000 classified as the grammar says');
  t.equal(isTokenCharCode(NaN), false, 'charCodeAt past the end is not a token character');
});
