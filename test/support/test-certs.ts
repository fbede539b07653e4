/**
 * Throwaway certificates for the TLS tests, made with the `openssl` command (Debian package
 * openssl) in a temp directory: a CA, and server certificates it signs for 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCa {
  dir: string;
  /** PEM of the CA certificate: what a client trusts. */
  pem: Buffer;
  certFile: string;
  keyFile: string;
  /** Removes the directory and everything made in it. */
  remove(): void;
}

export interface TestCert {
  certFile: string;
  keyFile: string;
  /** SHA-256 fingerprint as node's X509Certificate.fingerprint256 writes it (AA:BB:...). */
  fingerprint256: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeCa(name = 'sipbob test CA'): TestCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'sipbob-certs-'));
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${name}`], dir);
  const certFile = path.join(dir, 'ca.pem');
  return {
    dir,
    pem: readFileSync(certFile),
    certFile,
    keyFile: path.join(dir, 'ca.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A server certificate for 127.0.0.1 (and localhost), signed by `ca`, written as <name>.pem/<name>.key. */
export function makeCert(ca: TestCa, name: string, commonName = name): TestCert {
  const ext = path.join(ca.dir, `${name}.ext`);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`], ca.dir);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', ext],
    ca.dir,
  );
  const out = execFileSync('openssl', ['x509', '-in', `${name}.pem`, '-noout', '-fingerprint', '-sha256'], { cwd: ca.dir, encoding: 'utf8' });
  // "sha256 Fingerprint=AA:BB:..." (the label's case differs between OpenSSL versions)
  const fingerprint256 = out.slice(out.indexOf('=') + 1).trim().toUpperCase();
  return { certFile: path.join(ca.dir, `${name}.pem`), keyFile: path.join(ca.dir, `${name}.key`), fingerprint256 };
}
