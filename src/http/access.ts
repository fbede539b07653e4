/**
 * Who may use which route, in one place. Every route names its access level in its config
 * (`config: { access: 'admin' }`); one onRequest hook authenticates, limits failed logins and
 * decides before anything else runs (body parsing, validation, the handler). A route without
 * a level is admin-only, so a forgotten one fails closed.
 *
 * - public: anyone (health check, the portal files, which hold no data)
 * - admin: the Bearer token only
 * - authenticated: admin or any device (GET /api/me)
 * - own-extension: admin, or a device whose extension is the :number of the route
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { authenticate, DEFAULT_LOGIN_LIMIT, LoginLimiter, type LoginLimiterOptions, type Principal } from './auth.js';
import { errorBody } from './errors.js';
import { clientFields } from './trust-proxy.js';
import type { AdminView } from './view.js';

export type Access = 'public' | 'admin' | 'authenticated' | 'own-extension';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** Who sent the request, once access control let it through; undefined on public routes. */
    principal: Principal | undefined;
  }
}

export interface AccessOptions {
  view: AdminView;
  log: Logger;
  /** Failed-login limit per source address; defaults to 5 per 60 s. */
  loginLimit?: Partial<LoginLimiterOptions>;
}

/** The portal sends this so that a 401 does not make the browser pop up its own Basic dialog. */
const PORTAL_HEADER = 'x-requested-with';
const PORTAL_HEADER_VALUE = 'sipbob-portal';

function unauthorized(req: FastifyRequest, reply: FastifyReply, message: string): FastifyReply {
  if (req.headers[PORTAL_HEADER] !== PORTAL_HEADER_VALUE) {
    reply.header('WWW-Authenticate', 'Basic realm="sipbob", charset="UTF-8"');
  }
  return reply.code(401).send(errorBody(401, message));
}

const accessPlugin: FastifyPluginAsync<AccessOptions> = async (app: FastifyInstance, opts: AccessOptions) => {
  const { view, log } = opts;
  const limiter = new LoginLimiter({ ...DEFAULT_LOGIN_LIMIT, ...opts.loginLimit });
  app.decorateRequest('principal', undefined);

  // Answering from an async hook: send, then return the reply so fastify stops the chain.
  app.addHook('onRequest', async (req, reply): Promise<FastifyReply | undefined> => {
    if (req.is404) return undefined;
    const access = req.routeOptions.config.access ?? 'admin';
    if (access === 'public') return undefined;
    // req.ip is the client a trusted reverse proxy forwarded (server.ts), so one guessing
    // client behind the proxy does not lock out everyone else who comes through it.
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
      log.warn({ ...clientFields(req), scheme: auth.scheme, username: auth.username, method: req.method, url: req.url }, 'failed HTTP login');
      return unauthorized(req, reply, 'Wrong credentials');
    }
    const p = auth.principal;
    req.principal = p;
    if (p.role === 'admin' || access === 'authenticated') return undefined;
    if (access === 'own-extension') {
      // Params are routed (not yet validated) in onRequest; a mismatch is 403 whatever it is,
      // so a device learns nothing about which other extensions exist.
      const params = req.params as { number?: unknown };
      if (params.number === p.extension) return undefined;
    }
    return reply.code(403).send(errorBody(403, 'A device may only see and change its own extension'));
  });
};

// Not encapsulated (what fastify-plugin does): the hook and the decorator apply to every route.
(accessPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export { accessPlugin as access };
