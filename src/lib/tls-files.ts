/**
 * The certificate and key of `tls.cert`/`tls.key`, read and checked before they are used, so
 * that a bad file is reported by the config key that names it (at start: the proxy does not
 * start; on SIGHUP: logged, and the running certificate stays).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** Paths of the PEM files, as in Config.tls (relative paths from the working directory). */
export interface TlsPaths {
  cert: string;
  key: string;
}

/** The PEM contents, ready for https.createServer / server.setSecureContext. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** What an operator needs to see which certificate is being served. */
  info: { subject: string; issuer: string; validTo: string; fingerprint256: string; expired: boolean };
}

/** A file of the tls section is unusable; the message starts with its key (tls.cert or tls.key). */
export class TlsFileError extends Error {
  constructor(
    readonly key: 'tls.cert' | 'tls.key',
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'TlsFileError';
  }
}

function read(key: 'tls.cert' | 'tls.key', file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new TlsFileError(key, `cannot read "${file}" (${code})`);
  }
}

/**
 * Reads both files and checks that the certificate parses, the key parses (unencrypted) and
 * the two belong together. OpenSSL's own messages are not passed on: they name neither the
 * file nor the key, and the operator needs both.
 */
export function readTlsFiles(paths: TlsPaths, now = Date.now()): TlsMaterial {
  const cert = read('tls.cert', paths.cert);
  const key = read('tls.key', paths.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new TlsFileError('tls.cert', `"${paths.cert}" holds no PEM certificate`);
  }
  try {
    createPrivateKey(key);
  } catch {
    throw new TlsFileError('tls.key', `"${paths.key}" holds no unencrypted PEM private key`);
  }
  try {
    createSecureContext({ cert, key });
  } catch {
    throw new TlsFileError('tls.key', `"${paths.key}" is not the key of the certificate in "${paths.cert}"`);
  }
  const validTo = new Date(x509.validTo).toISOString();
  return {
    cert,
    key,
    info: {
      subject: x509.subject.replaceAll('\n', ', '),
      issuer: x509.issuer.replaceAll('\n', ', '),
      validTo,
      fingerprint256: x509.fingerprint256,
      expired: Date.parse(validTo) <= now,
    },
  };
}
