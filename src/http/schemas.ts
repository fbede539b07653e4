/**
 * JSON schemas of the HTTP API (interface.md, section HTTP API). Request schemas reject
 * anything unexpected; response schemas double as an allowlist: fastify serializes only the
 * properties named here, so a field added to the view by mistake (a password, say) never
 * reaches a client.
 */

/** Extension numbers are short dial strings; letters allowed so named extensions still work. */
export const EXTENSION_NUMBER_PATTERN = '^[0-9A-Za-z*#+._-]{1,64}$';

export const noQuery = {
  type: 'object',
  properties: {},
  additionalProperties: false,
} as const;

export const numberParams = {
  type: 'object',
  properties: { number: { type: 'string', pattern: EXTENSION_NUMBER_PATTERN } },
  required: ['number'],
  additionalProperties: false,
} as const;

/**
 * The longest path parameter the router accepts (fastify's default is 100 characters, which a
 * call id, Call-ID;from-tag;to-tag, URL-encoded, can exceed). Must stay in step with the
 * maxLength of the parameters below.
 */
export const MAX_PARAM_LENGTH = 1024;

/** A call id as GET /api/calls gives it; any text (Call-IDs are chosen by the phones). */
export const callIdParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: MAX_PARAM_LENGTH } },
  required: ['id'],
  additionalProperties: false,
} as const;

/** A device's SIP username as the config names it. */
export const usernameParams = {
  type: 'object',
  properties: { username: { type: 'string', minLength: 1, maxLength: MAX_PARAM_LENGTH } },
  required: ['username'],
  additionalProperties: false,
} as const;

/** A 204 answer: no body at all. */
export const noContent = { type: 'null' } as const;

export const patchExtensionBody = {
  type: 'object',
  properties: { busyOnBusy: { type: 'boolean' } },
  required: ['busyOnBusy'],
  additionalProperties: false,
} as const;

const registration = {
  type: 'object',
  properties: {
    contact: { type: 'string' },
    expiresAt: { type: 'string' },
    source: { type: 'string' },
    transport: { type: 'string' },
    userAgent: { type: 'string' },
    instance: { type: 'string' },
  },
  required: ['contact', 'expiresAt', 'source', 'transport', 'userAgent'],
} as const;

const device = {
  type: 'object',
  properties: {
    username: { type: 'string' },
    registrations: { type: 'array', items: registration },
  },
  required: ['username', 'registrations'],
} as const;

export const extension = {
  type: 'object',
  properties: {
    number: { type: 'string' },
    name: { type: 'string' },
    busyOnBusy: { type: 'boolean' },
    activeCalls: { type: 'integer' },
    devices: { type: 'array', items: device },
  },
  required: ['number', 'name', 'busyOnBusy', 'activeCalls', 'devices'],
} as const;

export const extensionList = { type: 'array', items: extension } as const;

export const callList = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      extension: { type: 'string' },
      direction: { type: 'string' },
      device: { type: 'string' },
      state: { type: 'string' },
      startedAt: { type: 'string' },
      /** When each end of the call last proved alive (keepalive answers), ISO 8601. */
      aliveAt: {
        type: 'object',
        properties: { caller: { type: 'string' }, callee: { type: 'string' } },
        required: ['caller', 'callee'],
      },
      instance: { type: 'string' },
    },
    required: ['id', 'extension', 'direction', 'device', 'state', 'startedAt', 'aliveAt'],
  },
} as const;

export const me = {
  type: 'object',
  properties: {
    role: { type: 'string', enum: ['admin', 'device'] },
    username: { type: 'string' },
    extension: { type: 'string' },
  },
  required: ['role'],
} as const;

export const health = {
  type: 'object',
  properties: { status: { type: 'string' }, redis: { type: 'string', enum: ['up', 'down'] } },
  required: ['status'],
} as const;

/** Shape of every error body: the fastify convention, so clients see one format. */
export const error = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
  required: ['statusCode', 'error', 'message'],
} as const;

/** The error answers a protected route can give, for its response schema. */
export const errors = { 400: error, 401: error, 403: error, 404: error, 415: error, 429: error } as const;
