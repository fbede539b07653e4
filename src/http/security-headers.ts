/** Headers on every answer: no sniffing, no referrer, no framing, and no caching of API data. */
import type { FastifyPluginAsync } from 'fastify';

const securityHeaders: FastifyPluginAsync = async (app) => {
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('X-Frame-Options', 'DENY');
    // API answers carry per-user data: no shared cache may keep them.
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
    return payload;
  });
};

// Not encapsulated: applies to every route, the 404 and 405 answers included.
(securityHeaders as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export { securityHeaders };
