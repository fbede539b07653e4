/** GET /api/calls: the confirmed calls, one row per party, admin only. */
import type { FastifyPluginAsync } from 'fastify';
import { methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';
import type { AdminView } from '../view.js';

export const calls: FastifyPluginAsync<{ view: AdminView }> = async (app, { view }) => {
  app.get(
    '/api/calls',
    { config: { access: 'admin' }, schema: { querystring: S.noQuery, response: { 200: S.callList, ...S.errors } } },
    async () => view.listCalls(),
  );
  methodNotAllowed(app, '/api/calls', 'GET, HEAD');
};
