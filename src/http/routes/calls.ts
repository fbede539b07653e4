/**
 * The confirmed calls, admin only: GET /api/calls lists them (one row per party), DELETE
 * /api/calls/{id} ends one (the proxy sends BYE to both ends).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { errorBody, methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';
import type { AdminView } from '../view.js';

export const calls: FastifyPluginAsync<{ view: AdminView; log: Logger }> = async (app, { view, log }) => {
  app.get(
    '/api/calls',
    { config: { access: 'admin' }, schema: { querystring: S.noQuery, response: { 200: S.callList, ...S.errors } } },
    async () => view.listCalls(),
  );
  methodNotAllowed(app, '/api/calls', 'GET, HEAD');

  // The id holds ';' and '@' (Call-ID;from-tag;to-tag): clients send it URL-encoded, and the
  // router hands it over decoded.
  app.delete<{ Params: { id: string } }>(
    '/api/calls/:id',
    {
      config: { access: 'admin' },
      schema: { params: S.callIdParams, querystring: S.noQuery, response: { 204: S.noContent, ...S.errors } },
    },
    async (req, reply) => {
      // The 404 does not quote the id: error messages never echo a request back (errors.ts).
      if (!view.endCall(req.params.id)) return reply.code(404).send(errorBody(404, 'No active call has this id'));
      log.info({ id: req.params.id, by: 'admin' }, 'call ended through the API');
      return reply.code(204).send();
    },
  );
  methodNotAllowed(app, '/api/calls/:id', 'DELETE');
};
