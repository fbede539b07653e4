/**
 * Admin API, portal, /metrics and /healthz (interface.md, section HTTP API) on fastify 5.
 * This layer sees the proxy only through AdminView: it reads and changes state, never SIP
 * internals (design.md).
 */
import { STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { authenticate, DEFAULT_LOGIN_LIMIT, LoginLimiter, type LoginLimiterOptions, type Principal } from './auth.js';
import { portalPage } from './portal-html.js';
import * as S from './schemas.js';
import type { AdminView, ExtensionView } from './view.js';

export interface HttpOptions {
  host: string;
  port: number;
  view: AdminView;
  metrics: Registry;
  logger: Logger;
  /** Failed-login limit per source address; defaults to 5 per 60 s. Tests shorten the window. */
  loginLimit?: Partial<LoginLimiterOptions>;
}

export interface HttpServer {
  close(): Promise<void>;
  address: { host: string; port: number };
}

/**
 * Who may use a route.
 * - public: anyone (health check, the portal page itself, which holds no data)
 * - admin: the Bearer token only
 * - authenticated: admin or any device (GET /api/me)
 * - own-extension: admin, or a device whose extension is the :number of the route
 */
type Access = 'public' | 'admin' | 'authenticated' | 'own-extension';

/** The portal sends this so that a 401 does not make the browser pop up its own Basic dialog. */
const PORTAL_HEADER = 'x-requested-with';
const PORTAL_HEADER_VALUE = 'sipbob-portal';

function errorBody(statusCode: number, message: string): { statusCode: number; error: string; message: string } {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/**
 * Messages for fastify's own client errors. Written out here instead of passing err.message
 * through, so that no error text can echo a request back (Node's JSON.parse messages quote the
 * input, which could be a password).
 */
const CLIENT_ERROR_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Content-Type must be application/json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'Body must not be empty: send a JSON object such as {"busyOnBusy": true}',
  FST_ERR_CTP_INVALID_JSON_BODY: 'Body is not valid JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'Body is too large',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
};

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns Ajv errors into one readable sentence, e.g. "body/busyOnBusy must be boolean". */
function formatSchemaErrors(errors: readonly AjvError[], dataVar: string): Error {
  const parts = errors.map((e) => {
    const where = dataVar + e.instancePath;
    switch (e.keyword) {
      case 'additionalProperties': {
        const name = String(e.params['additionalProperty']).slice(0, 64);
        return `${where} has unknown property "${name}"`;
      }
      case 'required':
        return `${where} must have property "${String(e.params['missingProperty'])}"`;
      case 'type':
        return `${where} must be ${String(e.params['type'])}`;
      case 'pattern':
        return `${where} is not a valid extension number`;
      default:
        return `${where} ${e.message ?? 'is invalid'}`;
    }
  });
  return new Error([...new Set(parts)].join('; '));
}

export async function startHttp(opts: HttpOptions): Promise<HttpServer> {
  const { view, metrics } = opts;
  const log = opts.logger.child({ component: 'http' });
  const limiter = new LoginLimiter({ ...DEFAULT_LOGIN_LIMIT, ...opts.loginLimit });
  const portal = portalPage();

  const app = Fastify({
    loggerInstance: log,
    // Per-request access logs would double the log volume of every portal poll and scrape;
    // what matters (failed logins, server errors) is logged explicitly below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4096, // the only body we accept is {"busyOnBusy": bool}
    ajv: {
      customOptions: {
        // fastify's defaults would silently drop unknown keys and turn "true" into true;
        // the API promises a 400 for both instead.
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: false,
        allErrors: true,
      },
    },
    schemaErrorFormatter: (errors, dataVar) => formatSchemaErrors(errors as readonly AjvError[], dataVar),
  });

  // Only JSON bodies are accepted; without the text/plain parser such bodies get 415 from fastify.
  app.removeContentTypeParser('text/plain');

  const principals = new WeakMap<FastifyRequest, Principal>();

  function unauthorized(req: FastifyRequest, reply: FastifyReply, message: string): FastifyReply {
    if (req.headers[PORTAL_HEADER] !== PORTAL_HEADER_VALUE) {
      reply.header('WWW-Authenticate', 'Basic realm="sipbob", charset="UTF-8"');
    }
    return reply.code(401).send(errorBody(401, message));
  }

  function guard(access: Access) {
    // Answering from an async hook: send, then return the reply so fastify stops the chain.
    return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      if (access === 'public') return undefined;
      const wait = limiter.retryAfter(req.ip);
      if (wait > 0) {
        return reply
          .code(429)
          .header('Retry-After', String(wait))
          .send(errorBody(429, `Too many failed logins from this address; try again in ${wait} s`));
      }
      const auth = authenticate(req.headers.authorization, view);
      if (auth.kind === 'anonymous') {
        return unauthorized(req, reply, 'Sign in with the admin token (Bearer) or device credentials (Basic)');
      }
      if (auth.kind === 'failed') {
        limiter.fail(req.ip);
        // Never the password or the header: only what helps an operator spot an attack.
        log.warn(
          { ip: req.ip, scheme: auth.scheme, username: auth.username, method: req.method, url: req.url },
          'failed HTTP login',
        );
        return unauthorized(req, reply, 'Wrong credentials');
      }
      const p = auth.principal;
      principals.set(req, p);
      if (p.role === 'admin' || access === 'authenticated') return undefined;
      if (access === 'own-extension') {
        // Params are routed (not yet validated) in onRequest; a mismatch is 403 whatever it is,
        // so a device learns nothing about which other extensions exist.
        const params = req.params as { number?: unknown };
        if (params.number === p.extension) return undefined;
      }
      return reply.code(403).send(errorBody(403, 'A device may only see and change its own extension'));
    };
  }

  /** Runs before body parsing: a missing or other Content-Type is 415 before anything else. */
  async function requireJson(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const type = req.headers['content-type'];
    if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
      return reply.code(415).send(errorBody(415, CLIENT_ERROR_MESSAGES['FST_ERR_CTP_INVALID_MEDIA_TYPE']!));
    }
    return undefined;
  }

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('X-Frame-Options', 'DENY');
    // API answers carry per-user data: no shared cache may keep them.
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      return reply.code(400).send(errorBody(400, err.message));
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      log.error({ err, method: req.method, url: req.url }, 'HTTP handler failed');
      return reply.code(500).send(errorBody(500, 'Internal error; see the proxy log'));
    }
    const message = (err.code && CLIENT_ERROR_MESSAGES[err.code]) || (STATUS_CODES[status] ?? 'Bad request');
    return reply.code(status).send(errorBody(status, message));
  });

  app.setNotFoundHandler((req, reply) => {
    return reply.code(404).send(errorBody(404, 'No such route'));
  });

  const errors = { 400: S.error, 401: S.error, 403: S.error, 404: S.error, 415: S.error, 429: S.error } as const;

  app.get('/healthz', { onRequest: guard('public'), schema: { querystring: S.noQuery, response: { 200: S.health, 503: S.health } } }, async (_req, reply) => {
    if (view.ready()) return { status: 'ok' };
    return reply.code(503).send({ status: 'starting' });
  });

  app.get('/metrics', { onRequest: guard('admin'), schema: { querystring: S.noQuery } }, async (_req, reply) => {
    const text = await metrics.metrics();
    return reply.type(metrics.contentType).send(text);
  });

  app.get('/api/me', { onRequest: guard('authenticated'), schema: { querystring: S.noQuery, response: { 200: S.me, ...errors } } }, async (req) => {
    const p = principals.get(req);
    if (p === undefined || p.role === 'admin') return { role: 'admin' };
    return { role: 'device', username: p.username, extension: p.extension };
  });

  app.get('/api/extensions', { onRequest: guard('admin'), schema: { querystring: S.noQuery, response: { 200: S.extensionList, ...errors } } }, async () => {
    return view.listExtensions();
  });

  app.get<{ Params: { number: string } }>(
    '/api/extensions/:number',
    { onRequest: guard('own-extension'), schema: { params: S.numberParams, querystring: S.noQuery, response: { 200: S.extension, ...errors } } },
    async (req, reply) => {
      const ext = view.getExtension(req.params.number);
      if (ext === undefined) return reply.code(404).send(errorBody(404, `Extension ${req.params.number} not found`));
      return visibleTo(ext, principals.get(req));
    },
  );

  app.patch<{ Params: { number: string }; Body: { busyOnBusy: boolean } }>(
    '/api/extensions/:number',
    {
      onRequest: [guard('own-extension'), requireJson],
      schema: { params: S.numberParams, querystring: S.noQuery, body: S.patchExtensionBody, response: { 200: S.extension, ...errors } },
    },
    async (req, reply) => {
      const { number } = req.params;
      if (!view.setBusyOnBusy(number, req.body.busyOnBusy)) {
        return reply.code(404).send(errorBody(404, `Extension ${number} not found`));
      }
      const who = principals.get(req);
      log.info({ extension: number, busyOnBusy: req.body.busyOnBusy, by: who?.role === 'device' ? who.username : 'admin' }, 'busyOnBusy changed');
      const ext = view.getExtension(number);
      if (ext === undefined) return reply.code(404).send(errorBody(404, `Extension ${number} not found`));
      return visibleTo(ext, who);
    },
  );

  app.get('/api/calls', { onRequest: guard('admin'), schema: { querystring: S.noQuery, response: { 200: S.callList, ...errors } } }, async () => {
    return view.listCalls();
  });

  // The portal page is static and carries no data; everything it shows comes from the API with
  // the credentials the user types in. Its CSP allows exactly its own inline script and style.
  app.get('/', { onRequest: guard('public') }, async (_req, reply) => {
    return reply
      .type('text/html; charset=utf-8')
      .header('Content-Security-Policy', portal.csp)
      .header('Cache-Control', 'no-cache')
      .send(portal.html);
  });

  // Known paths with a method they do not support: 405 with Allow, as HTTP says, not 404.
  const allowed: Record<string, string> = {
    '/healthz': 'GET, HEAD',
    '/metrics': 'GET, HEAD',
    '/api/me': 'GET, HEAD',
    '/api/extensions': 'GET, HEAD',
    '/api/extensions/:number': 'GET, HEAD, PATCH',
    '/api/calls': 'GET, HEAD',
    '/': 'GET, HEAD',
  };
  for (const [url, allow] of Object.entries(allowed)) {
    const taken = allow.split(', ');
    const methods = ['DELETE', 'PATCH', 'POST', 'PUT'].filter((m) => !taken.includes(m));
    app.route({
      method: methods,
      url,
      handler: async (_req, reply) => reply.code(405).header('Allow', allow).send(errorBody(405, `Allowed: ${allow}`)),
    });
  }

  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    close: () => app.close(),
  };
}

/**
 * A device user sees its own extension, but the addresses and user agents of the other
 * devices (colleagues on a shared hotline) are not theirs to see: only their own device's
 * registrations are listed.
 */
function visibleTo(ext: ExtensionView, p: Principal | undefined): ExtensionView {
  if (p === undefined || p.role === 'admin') return ext;
  return { ...ext, devices: ext.devices.map((d) => (d.username === p.username ? d : { username: d.username, registrations: [] })) };
}
