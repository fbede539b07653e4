import t from 'tap';
import { headerName } from '../../src/sip/header-names.js';

const name = (s: string) => headerName(Buffer.from(`xx${s}yy`, 'latin1'), 2, 2 + s.length);

t.test('known names resolve from the bytes, any case, compact forms to long', async (t) => {
  t.equal(name('Via'), 'via');
  t.equal(name('VIA'), 'via');
  t.equal(name('v'), 'via');
  t.equal(name('V'), 'via');
  t.equal(name('Call-ID'), 'call-id');
  t.equal(name('i'), 'call-id');
  t.equal(name('CSeq'), 'cseq');
  t.equal(name('Max-Forwards'), 'max-forwards');
  t.equal(name('l'), 'content-length');
  t.equal(name('WWW-Authenticate'), 'www-authenticate');
  t.equal(name('Record-Route'), 'record-route');
  t.equal(name('x'), 'session-expires');
});

t.test('unknown names are lower-cased, near misses are not mistaken for known ones', async (t) => {
  t.equal(name('X-Custom-Header'), 'x-custom-header');
  t.equal(name('Vias'), 'vias');
  t.equal(name('Vi'), 'vi');
  t.equal(name('Call-IDs'), 'call-ids');
  t.equal(name('Contacts'), 'contacts');
  t.equal(name('q'), 'q', 'a letter that is no compact form stays itself');
  t.equal(name('To-'), 'to-');
  t.equal(name('Fro'), 'fro');
});

t.test('non-token bytes make no name', async (t) => {
  t.equal(name('Via x'), undefined);
  t.equal(name('Vi\u00e4'), undefined);
  t.equal(name('Call@ID'), undefined);
  t.equal(name('To\u0000'), undefined);
});

t.test('every spelling of a known name gives the very same result as the slow path', async (t) => {
  const names = ['via', 'from', 'to', 'call-id', 'cseq', 'contact', 'content-type', 'user-agent', 'proxy-authorization', 'p-asserted-identity'];
  for (const n of names) {
    const mixed = [...n].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('');
    t.equal(name(mixed), n, mixed);
  }
});
