/**
 * The portal's files (src/http/portal: index.html, portal.css, portal.ts compiled to portal.js),
 * served by @fastify/static from the build output. Public: the page holds no data; everything
 * it shows comes from the API with the credentials the user types in.
 */
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { methodNotAllowed } from '../errors.js';

/**
 * The built portal, dist/src/http/portal, whether this module runs from dist (npm start) or
 * from src (the tests, which run after the build).
 */
export function portalDir(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../../../dist/src/http/portal/' : '../portal/', import.meta.url));
}

/** Scripts and styles only from this origin, no plugins, frames or form posts anywhere. */
export const PORTAL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** URL path -> file in the portal directory. */
const FILES: ReadonlyArray<[string, string]> = [
  ['/', 'index.html'],
  ['/portal.css', 'portal.css'],
  ['/portal.js', 'portal.js'],
];

export const portal: FastifyPluginAsync<{ dir?: string }> = async (app, opts) => {
  // serve: false: no wildcard route; only the three files below exist, each with its own route.
  await app.register(fastifyStatic, { root: opts.dir ?? portalDir(), serve: false, cacheControl: false });
  for (const [url, file] of FILES) {
    app.get(url, { config: { access: 'public' } }, (_req, reply) => {
      // Revalidated on every load (ETag), so a new build shows at once.
      reply.header('Cache-Control', 'no-cache');
      if (file === 'index.html') reply.header('Content-Security-Policy', PORTAL_CSP);
      return reply.sendFile(file);
    });
    methodNotAllowed(app, url, 'GET, HEAD');
  }
};
