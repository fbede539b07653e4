/**
 * Error bodies of the HTTP API: one shape for every error (the fastify convention), messages
 * that never echo a request back, and 405 with Allow for known paths.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { clientFields } from './trust-proxy.js';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

export function errorBody(statusCode: number, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/**
 * Messages for fastify's own client errors. Written out here instead of passing err.message
 * through, so that no error text can echo a request back (Node's JSON.parse messages quote the
 * input, which could be a password).
 */
export const CLIENT_ERROR_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Content-Type must be application/json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'Body must not be empty: send a JSON object such as {"busyOnBusy": true}',
  FST_ERR_CTP_INVALID_JSON_BODY: 'Body is not valid JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'Body is too large',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  FST_ERR_BAD_URL: 'The path is not validly URL-encoded',
  FST_ERR_MAX_PARAM_LENGTH: 'A path parameter is too long',
};

/**
 * The router's own errors (a malformed %-escape, a path parameter over maxParamLength): in the
 * one error shape, and without fastify's default message, which quotes the path.
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  const message = (err.code && CLIENT_ERROR_MESSAGES[err.code]) || (STATUS_CODES[status] ?? 'Bad request');
  return reply.code(status).send(errorBody(status, message));
}

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns Ajv errors into one readable sentence, e.g. "body/busyOnBusy must be boolean". */
export function formatSchemaErrors(errors: readonly AjvError[], dataVar: string): Error {
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

/** Schema errors are 400 with their sentence; server errors are logged and answered without detail. */
export function errorHandler(log: Logger) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (err.validation) {
      return reply.code(400).send(errorBody(400, err.message));
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      log.error({ err, ...clientFields(req), method: req.method, url: req.url }, 'HTTP handler failed');
      return reply.code(500).send(errorBody(500, 'Internal error; see the proxy log'));
    }
    const message = (err.code && CLIENT_ERROR_MESSAGES[err.code]) || (STATUS_CODES[status] ?? 'Bad request');
    return reply.code(status).send(errorBody(status, message));
  };
}

export function notFoundHandler(_req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(404).send(errorBody(404, 'No such route'));
}


/**
 * A known path with a method it does not support is 405 with Allow, as HTTP says, not 404.
 * allow: the methods the path has, e.g. 'GET, HEAD'.
 */
export function methodNotAllowed(app: FastifyInstance, url: string, allow: string): void {
  const taken = allow.split(', ');
  // GET brings HEAD along (fastify's exposeHeadRoutes), so HEAD is never listed on its own.
  const methods = ['DELETE', 'GET', 'PATCH', 'POST', 'PUT'].filter((m) => !taken.includes(m));
  app.route({
    method: methods,
    url,
    config: { access: 'public' },
    handler: async (_req, reply) => reply.code(405).header('Allow', allow).send(errorBody(405, `Allowed: ${allow}`)),
  });
}
