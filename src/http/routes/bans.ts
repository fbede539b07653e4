/**
 * Banned source addresses (issue 12), admin only: GET /api/bans lists them, DELETE
 * /api/bans/{address} lifts one. What is banned and why is decided in src/security/; this
 * route sees it through BanAdmin, which the app implements.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { errorBody, methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';

export interface BanView {
  address: string;
  /** "flood" or "auth-failures". */
  reason: string;
  /** When the ban ends, ISO 8601. */
  until: string;
}

export interface BanAdmin {
  list(): BanView[];
  /** False when the address is not banned. */
  lift(address: string): boolean;
}

/** A proxy without bans to show (tests of other routes). */
export const NO_BANS: BanAdmin = { list: () => [], lift: () => false };

const banList = {
  type: 'array',
  items: {
    type: 'object',
    properties: { address: { type: 'string' }, reason: { type: 'string' }, until: { type: 'string' } },
    required: ['address', 'reason', 'until'],
  },
} as const;

/** An IPv4 or IPv6 literal (an IPv6 one with its colons; a zone is not part of a ban's key). */
const addressParams = {
  type: 'object',
  properties: { address: { type: 'string', minLength: 2, maxLength: 45, pattern: '^[0-9A-Fa-f.:]+$' } },
  required: ['address'],
  additionalProperties: false,
} as const;

export const bans: FastifyPluginAsync<{ bans: BanAdmin; log: Logger }> = async (app, { bans, log }) => {
  app.get('/api/bans', { config: { access: 'admin' }, schema: { querystring: S.noQuery, response: { 200: banList, ...S.errors } } }, async () =>
    bans.list(),
  );
  methodNotAllowed(app, '/api/bans', 'GET, HEAD');

  app.delete<{ Params: { address: string } }>(
    '/api/bans/:address',
    { config: { access: 'admin' }, schema: { params: addressParams, querystring: S.noQuery, response: { 204: S.noContent, ...S.errors } } },
    async (req, reply) => {
      if (!bans.lift(req.params.address)) return reply.code(404).send(errorBody(404, 'This address is not banned'));
      log.info({ address: req.params.address, by: 'admin' }, 'ban lifted through the API');
      return reply.code(204).send();
    },
  );
  methodNotAllowed(app, '/api/bans/:address', 'DELETE');
};
