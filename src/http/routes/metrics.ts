/** GET /metrics: the Prometheus scrape, admin only. */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';

export const metrics: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  app.get('/metrics', { config: { access: 'admin' }, schema: { querystring: S.noQuery } }, async (_req, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
  methodNotAllowed(app, '/metrics', 'GET, HEAD');
};
