/**
 * Admin API, portal, /metrics and /healthz (interface.md, section HTTP API) on fastify 5.
 * This layer sees the proxy only through AdminView: it reads and changes state, never SIP
 * internals (design.md). Here the instance is built and the plugins registered; each route
 * lives in routes/, who may use it in access.ts.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { access } from './access.js';
import type { LoginLimiterOptions } from './auth.js';
import { errorHandler, formatSchemaErrors, frameworkErrorHandler, notFoundHandler } from './errors.js';
import { bans, NO_BANS, type BanAdmin } from './routes/bans.js';
import { calls } from './routes/calls.js';
import { devices } from './routes/devices.js';
import { extensions } from './routes/extensions.js';
import { health } from './routes/health.js';
import { me } from './routes/me.js';
import { metrics } from './routes/metrics.js';
import { portal } from './routes/portal.js';
import { MAX_PARAM_LENGTH } from './schemas.js';
import { securityHeaders } from './security-headers.js';
import type { AdminView } from './view.js';

export interface HttpOptions {
  host: string;
  port: number;
  view: AdminView;
  metrics: Registry;
  logger: Logger;
  /** Failed-login limit per source address; defaults to 5 per 60 s. Tests shorten the window. */
  loginLimit?: Partial<LoginLimiterOptions>;
  /** The built portal files; defaults to dist/src/http/portal (routes/portal.ts). */
  portalDir?: string;
  /** Banned source addresses (GET/DELETE /api/bans); none when absent. */
  bans?: BanAdmin;
}

export interface HttpServer {
  close(): Promise<void>;
  address: { host: string; port: number };
}

export async function startHttp(opts: HttpOptions): Promise<HttpServer> {
  const { view } = opts;
  const log = opts.logger.child({ component: 'http' });

  const app = Fastify({
    loggerInstance: log,
    // Per-request access logs would double the log volume of every portal poll and scrape;
    // what matters (failed logins, server errors) is logged explicitly.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4096, // the only body we accept is {"busyOnBusy": bool}
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandler,
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
    schemaErrorFormatter: (errors, dataVar) => formatSchemaErrors(errors as Parameters<typeof formatSchemaErrors>[0], dataVar),
  });

  // Only JSON bodies are accepted; without the text/plain parser such bodies get 415 from fastify.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler(log));
  app.setNotFoundHandler(notFoundHandler);

  await app.register(securityHeaders);
  await app.register(access, { view, log, loginLimit: opts.loginLimit });
  await app.register(health, { view });
  await app.register(metrics, { registry: opts.metrics });
  await app.register(me);
  await app.register(extensions, { view, log });
  await app.register(calls, { view, log });
  await app.register(devices, { view, log });
  await app.register(bans, { bans: opts.bans ?? NO_BANS, log });
  await app.register(portal, { dir: opts.portalDir });

  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    close: () => app.close(),
  };
}
