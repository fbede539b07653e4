/**
 * Digest authentication of requests from devices (RFC 3261 §22): 401/WWW-Authenticate for
 * REGISTER at the registrar, 407/Proxy-Authenticate for requests through the proxy.
 */
import type { SipMessage } from '../sip/message.js';
import { parseUri } from '../sip/uri.js';
import type { Device, Directory } from '../directory/directory.js';
import { challenge, NonceManager, parseDigestCredentials, verifyResponse, type DigestCredentials } from './digest.js';

export type AuthKind = 'registrar' | 'proxy';

export type AuthResult =
  | { ok: true; device: Device }
  | { ok: false; status: 401 | 407; reason: string; headers: string[] };

export interface AuthSettings {
  realm: string;
  algorithms: readonly string[];
  /** A host (lower case) that names this proxy, for the digest-uri check. */
  isOurHost(host: string): boolean;
}

/**
 * Hears every wrong digest answer with the address it came from (security/ bans guessers).
 * A failure: credentials for our realm that do not verify (wrong password, unknown username,
 * an algorithm or digest uri we do not accept). Not a failure: a request without credentials
 * (the first leg of every login) or a stale or replayed nonce with the right password.
 */
export interface AuthFailures {
  authFailed(address: string): void;
}

const NO_FAILURES: AuthFailures = { authFailed: () => {} };

/** Hashed against for an unknown username, so it costs what a wrong password costs. */
const NO_DEVICE_PASSWORD = '\u0000no-device';

export class Authenticator {
  readonly nonces: NonceManager;

  constructor(
    private readonly directory: Directory,
    private readonly settings: () => AuthSettings,
    nonces = new NonceManager(),
    private readonly failures: AuthFailures = NO_FAILURES,
  ) {
    this.nonces = nonces;
  }

  /** source: the address the request came from, to whom a failure counts. */
  authenticate(req: SipMessage, kind: AuthKind, source: string): AuthResult {
    const s = this.settings();
    const creds = this.credentials(req, kind === 'registrar' ? 'authorization' : 'proxy-authorization', s.realm);
    if (creds === undefined) return this.challenge(kind, s, false);
    const device = this.directory.device(creds.username);
    // Hashed even for an unknown username: the answer and its time do not tell which exist.
    const verified = verifyResponse(creds, device?.password ?? NO_DEVICE_PASSWORD, req.method);
    if (
      device === undefined ||
      !verified ||
      !s.algorithms.some((a) => a.toUpperCase() === creds.algorithm.toUpperCase()) ||
      !this.acceptableUri(creds.uri, req.uri, s)
    ) {
      // Same answer for unknown user and wrong password: no username probing.
      this.failures.authFailed(source);
      return this.challenge(kind, s, false);
    }
    // Nonce checked only after the password matched (see digest.ts: junk must not burn nc).
    const n = this.nonces.check(creds.nonce, creds.nc);
    if (n !== 'ok') return this.challenge(kind, s, n === 'stale');
    return { ok: true, device };
  }

  private credentials(req: SipMessage, header: string, realm: string): DigestCredentials | undefined {
    for (const h of req.fields(header)) {
      const c = parseDigestCredentials(req.value(h));
      if (c !== undefined && c.realm === realm) return c;
    }
    return undefined;
  }

  /**
   * The digest uri must name what the request addresses: the Request-URI itself, or this
   * proxy or its domain. SIPp puts sip:<proxy ip>:<port> there whatever the request line
   * says; Kamailio accepts that too.
   */
  private acceptableUri(digestUri: string, requestUri: string, s: AuthSettings): boolean {
    if (digestUri === requestUri) return true;
    const u = parseUri(digestUri);
    return u !== undefined && (u.host === s.realm.toLowerCase() || s.isOurHost(u.host));
  }

  private challenge(kind: AuthKind, s: AuthSettings, stale: boolean): AuthResult {
    const name = kind === 'registrar' ? 'WWW-Authenticate' : 'Proxy-Authenticate';
    const nonce = this.nonces.issue();
    const headers = s.algorithms.map((a) => `${name}: ${challenge(s.realm, a, nonce, { stale })}`);
    return kind === 'registrar'
      ? { ok: false, status: 401, reason: 'Unauthorized', headers }
      : { ok: false, status: 407, reason: 'Proxy Authentication Required', headers };
  }
}
