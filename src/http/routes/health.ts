/** GET /healthz: 200 once every SIP listener is bound, 503 before. Public: load balancers poll it. */
import type { FastifyPluginAsync } from 'fastify';
import { methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';
import type { AdminView } from '../view.js';

export const health: FastifyPluginAsync<{ view: AdminView }> = async (app, { view }) => {
  app.get(
    '/healthz',
    { config: { access: 'public' }, schema: { querystring: S.noQuery, response: { 200: S.health, 503: S.health } } },
    async (_req, reply) => {
      // Redis down is said, not failed: the instance keeps serving from memory, and a load
      // balancer that took it out would only move its phones' NAT flows.
      const redis = view.redis?.();
      const shared = redis === undefined ? {} : { redis };
      if (view.ready()) return { status: 'ok', ...shared };
      return reply.code(503).send({ status: 'starting', ...shared });
    },
  );
  methodNotAllowed(app, '/healthz', 'GET, HEAD');
};
