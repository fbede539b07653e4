/**
 * The extensions: the list (admin), one extension and its Busy-on-Busy switch (admin, or a
 * device of that extension).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Principal } from '../auth.js';
import { CLIENT_ERROR_MESSAGES, errorBody, methodNotAllowed } from '../errors.js';
import * as S from '../schemas.js';
import type { AdminView, ExtensionView } from '../view.js';

export interface ExtensionsOptions {
  view: AdminView;
  log: Logger;
}

/** Runs before body parsing: a missing or other Content-Type is 415 before anything else. */
async function requireJson(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const type = req.headers['content-type'];
  if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
    return reply.code(415).send(errorBody(415, CLIENT_ERROR_MESSAGES['FST_ERR_CTP_INVALID_MEDIA_TYPE']!));
  }
  return undefined;
}

/**
 * A device user sees its own extension, but the addresses and user agents of the other
 * devices (colleagues on a shared hotline) are not theirs to see: only their own device's
 * registrations are listed.
 */
export function visibleTo(ext: ExtensionView, p: Principal | undefined): ExtensionView {
  if (p === undefined || p.role === 'admin') return ext;
  return { ...ext, devices: ext.devices.map((d) => (d.username === p.username ? d : { username: d.username, registrations: [] })) };
}

export const extensions: FastifyPluginAsync<ExtensionsOptions> = async (app, { view, log }) => {
  app.get(
    '/api/extensions',
    { config: { access: 'admin' }, schema: { querystring: S.noQuery, response: { 200: S.extensionList, ...S.errors } } },
    async () => view.listExtensions(),
  );
  methodNotAllowed(app, '/api/extensions', 'GET, HEAD');

  app.get<{ Params: { number: string } }>(
    '/api/extensions/:number',
    {
      config: { access: 'own-extension' },
      schema: { params: S.numberParams, querystring: S.noQuery, response: { 200: S.extension, ...S.errors } },
    },
    async (req, reply) => {
      const ext = view.getExtension(req.params.number);
      if (ext === undefined) return reply.code(404).send(errorBody(404, `Extension ${req.params.number} not found`));
      return visibleTo(ext, req.principal);
    },
  );

  app.patch<{ Params: { number: string }; Body: { busyOnBusy: boolean } }>(
    '/api/extensions/:number',
    {
      config: { access: 'own-extension' },
      onRequest: requireJson,
      schema: { params: S.numberParams, querystring: S.noQuery, body: S.patchExtensionBody, response: { 200: S.extension, ...S.errors } },
    },
    async (req, reply) => {
      const { number } = req.params;
      if (!view.setBusyOnBusy(number, req.body.busyOnBusy)) {
        return reply.code(404).send(errorBody(404, `Extension ${number} not found`));
      }
      const who = req.principal;
      log.info({ extension: number, busyOnBusy: req.body.busyOnBusy, by: who?.role === 'device' ? who.username : 'admin' }, 'busyOnBusy changed');
      const ext = view.getExtension(number);
      if (ext === undefined) return reply.code(404).send(errorBody(404, `Extension ${number} not found`));
      return visibleTo(ext, who);
    },
  );
  methodNotAllowed(app, '/api/extensions/:number', 'GET, HEAD, PATCH');
};
