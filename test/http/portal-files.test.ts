/**
 * The portal's files as the build leaves them (dist/src/http/portal; npm test builds first),
 * served by routes/portal.ts: content types, the CSP of the page, and only these three files.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { portal, portalDir } from '../../src/http/routes/portal.js';

const dir = portalDir();
t.ok(existsSync(join(dir, 'portal.js')), `the portal is built in ${dir}`);

const app = Fastify();
await app.register(portal, { dir });
t.teardown(() => app.close());

t.test('the page, its style and its script, each with its content type', async (t) => {
  const expected: Array<[string, RegExp, string]> = [
    ['/', /^text\/html; charset=utf-8$/, 'index.html'],
    ['/portal.css', /^text\/css; charset=utf-8$/, 'portal.css'],
    ['/portal.js', /^(text|application)\/javascript; charset=utf-8$/, 'portal.js'],
  ];
  for (const [url, type, file] of expected) {
    const r = await app.inject({ method: 'GET', url });
    t.equal(r.statusCode, 200, url);
    t.match(r.headers['content-type'], type, `${url} content type`);
    t.equal(r.headers['cache-control'], 'no-cache', `${url} revalidated on every load`);
    t.equal(r.body, readFileSync(join(dir, file), 'utf8'), `${url} is ${file}`);
    const head = await app.inject({ method: 'HEAD', url });
    t.equal(head.statusCode, 200, `HEAD ${url}`);
  }
});

t.test('the page loads its script and style from this origin, which its CSP allows', async (t) => {
  const r = await app.inject({ method: 'GET', url: '/' });
  t.match(r.body, '<link rel="stylesheet" href="portal.css">');
  t.match(r.body, '<script type="module" src="portal.js"></script>');
  t.match(r.body, '<main id="app"');
  t.notMatch(r.body, /<script>|<style>/, 'nothing inline');
  const csp = String(r.headers['content-security-policy']);
  t.match(csp, /(^|; )script-src 'self'(;|$)/);
  t.match(csp, /(^|; )style-src 'self'(;|$)/);
  t.match(csp, /(^|; )default-src 'none'(;|$)/);
  const js = await app.inject({ method: 'GET', url: '/portal.js' });
  t.notMatch(js.body, /^\s*import |require\(/m, 'the script needs nothing else');
});

t.test('only the portal files: no index.html, no source, no directory walk', async (t) => {
  for (const url of ['/index.html', '/portal.ts', '/tsconfig.json', '/../package.json', '/portal.js.map']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 404, url);
  }
  const post = await app.inject({ method: 'POST', url: '/' });
  t.equal(post.statusCode, 405);
  t.equal(post.headers['allow'], 'GET, HEAD');
});
