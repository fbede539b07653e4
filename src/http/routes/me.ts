/** GET /api/me: who the credentials belong to (the portal's sign-in check). */
import type { FastifyPluginAsync } from 'fastify';
import { methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';

export const me: FastifyPluginAsync = async (app) => {
  app.get(
    '/api/me',
    { config: { access: 'authenticated' }, schema: { querystring: S.noQuery, response: { 200: S.me, ...S.errors } } },
    async (req) => {
      const p = req.principal;
      if (p === undefined || p.role === 'admin') return { role: 'admin' };
      return { role: 'device', username: p.username, extension: p.extension };
    },
  );
  methodNotAllowed(app, '/api/me', 'GET, HEAD');
};
