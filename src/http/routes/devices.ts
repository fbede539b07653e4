/** DELETE /api/devices/{username}/registrations (admin): removes every binding of a device. */
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { errorBody, methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';
import type { AdminView } from '../view.js';

export const devices: FastifyPluginAsync<{ view: AdminView; log: Logger }> = async (app, { view, log }) => {
  app.delete<{ Params: { username: string } }>(
    '/api/devices/:username/registrations',
    {
      config: { access: 'admin' },
      schema: { params: S.usernameParams, querystring: S.noQuery, response: { 204: S.noContent, ...S.errors } },
    },
    async (req, reply) => {
      if (!view.removeRegistrations(req.params.username)) return reply.code(404).send(errorBody(404, 'No device has this username'));
      log.info({ username: req.params.username, by: 'admin' }, 'registrations removed through the API');
      return reply.code(204).send();
    },
  );
  methodNotAllowed(app, '/api/devices/:username/registrations', 'DELETE');
};
