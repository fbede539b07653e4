/**
 * Admin API, portal, /metrics and /healthz (interface.md, section HTTP API) on fastify 5.
 * This layer sees the proxy only through AdminView: it reads and changes state, never SIP
 * internals (design.md). Here the instance is built and the plugins registered; each route
 * lives in routes/, who may use it in access.ts. Over TLS when given a certificate
 * (`http.https`), which a reload swaps without dropping connections; behind reverse proxies
 * (`http.trustProxy`) the client address is the one they forward (trust-proxy.ts).
 */
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
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
import { readTlsFiles, type TlsMaterial, type TlsPaths } from '../lib/tls-files.js';
import { ProxyTrust } from './trust-proxy.js';
import type { AdminView } from './view.js';
import type { Cidr } from '../config/types.js';

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
  /** Serve over TLS with these PEM files (`http.https`); a bad file rejects with TlsFileError. */
  tls?: TlsPaths;
  /** Reverse proxies whose X-Forwarded-For names the client (`http.trustProxy`). */
  trustProxy?: readonly Cidr[];
  /** Banned source addresses (GET/DELETE /api/bans); none when absent. */
  bans?: BanAdmin;
}

/** What a SIGHUP may change in a running server (listen address and https need a restart). */
export interface HttpReload {
  /** The certificate files to re-read; ignored by a plain-HTTP server. */
  tls?: TlsPaths;
  trustProxy: readonly Cidr[];
}

export interface HttpServer {
  close(): Promise<void>;
  address: { host: string; port: number };
  /**
   * Re-reads the certificate and key (new connections get them; open ones keep theirs) and
   * replaces the trusted proxies. A file that cannot be used is logged and the running
   * certificate stays; returns false then.
   */
  reload(next: HttpReload): boolean;
}

export async function startHttp(opts: HttpOptions): Promise<HttpServer> {
  const { view } = opts;
  const log = opts.logger.child({ component: 'http' });
  // Read before anything listens: a bad file is a start error naming its key.
  const tls = opts.tls === undefined ? undefined : readTlsFiles(opts.tls);
  const trust = new ProxyTrust(opts.trustProxy);

  // Typed as the default (plain HTTP) instance: routes and hooks do not depend on the server
  // kind, and the one TLS call below (setSecureContext) goes through the https.Server type.
  const app = Fastify({
    https: tls === undefined ? null : { cert: tls.cert, key: tls.key },
    // A function rather than the list, so that a reload can change the list in place.
    trustProxy: trust.trusts,
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
  }) as unknown as FastifyInstance;
  if (tls !== undefined) logCertificate(log, tls, 'https certificate loaded');

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
    reload: (next) => {
      trust.set(next.trustProxy);
      if (tls === undefined) return true;
      if (next.tls === undefined) {
        log.warn('http.https was turned off: it applies after a restart; keeping the running certificate');
        return false;
      }
      let material: TlsMaterial;
      try {
        material = readTlsFiles(next.tls);
      } catch (err) {
        log.error({ error: (err as Error).message }, 'https certificate not reloaded; keeping the running certificate');
        return false;
      }
      // Only handshakes from now on use the new context; open connections are left alone.
      (app.server as unknown as HttpsServer).setSecureContext({ cert: material.cert, key: material.key });
      logCertificate(log, material, 'https certificate reloaded');
      return true;
    },
  };
}

function logCertificate(log: Logger, tls: TlsMaterial, msg: string): void {
  if (tls.info.expired) log.warn({ certificate: tls.info }, `${msg}; it has expired`);
  else log.info({ certificate: tls.info }, msg);
}
