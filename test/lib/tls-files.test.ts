/**
 * readTlsFiles: a usable pair is read with what the log shows about it; every unusable file
 * is a TlsFileError whose message starts with the key naming the file (tls.cert or tls.key).
 * Certificates are made with openssl (test/support/test-certs.ts).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { readTlsFiles, TlsFileError } from '../../src/lib/tls-files.js';
import { makeCa, makeCert } from '../support/test-certs.js';

const ca = makeCa();
t.teardown(() => ca.remove());
const one = makeCert(ca, 'one', 'sipbob-one');
const two = makeCert(ca, 'two', 'sipbob-two');

function failure(fn: () => unknown): TlsFileError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof TlsFileError) return err;
    throw err;
  }
  return undefined;
}

t.test('a matching certificate and key', async (t) => {
  const m = readTlsFiles({ cert: one.certFile, key: one.keyFile });
  t.ok(m.cert.toString().startsWith('-----BEGIN CERTIFICATE-----'), 'the certificate PEM');
  t.match(m.key.toString(), /^-----BEGIN (EC )?PRIVATE KEY-----/, 'the key PEM');
  t.equal(m.info.subject, 'CN=sipbob-one');
  t.equal(m.info.issuer, 'CN=sipbob test CA');
  t.equal(m.info.fingerprint256, one.fingerprint256, 'the fingerprint openssl computes');
  t.equal(m.info.expired, false);
  t.ok(Date.parse(m.info.validTo) > Date.now(), `validTo ${m.info.validTo} is ISO and in the future`);
  t.equal(readTlsFiles({ cert: one.certFile, key: one.keyFile }, Date.parse(m.info.validTo) + 1).info.expired, true, 'expired after validTo');
});

t.test('each bad file names its key', async (t) => {
  const garbage = path.join(ca.dir, 'garbage.pem');
  writeFileSync(garbage, 'not a PEM file\n');
  const encrypted = path.join(ca.dir, 'encrypted.key');
  execFileSync('openssl', ['pkey', '-in', one.keyFile, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
  const missing = path.join(ca.dir, 'missing.pem');

  const cases: Array<[string, { cert: string; key: string }, string, RegExp]> = [
    ['missing certificate', { cert: missing, key: one.keyFile }, 'tls.cert', /^tls\.cert: cannot read ".*missing\.pem" \(ENOENT\)$/],
    ['missing key', { cert: one.certFile, key: missing }, 'tls.key', /^tls\.key: cannot read ".*missing\.pem" \(ENOENT\)$/],
    ['a directory as certificate', { cert: ca.dir, key: one.keyFile }, 'tls.cert', /^tls\.cert: cannot read .*\(EISDIR\)$/],
    ['certificate not PEM', { cert: garbage, key: one.keyFile }, 'tls.cert', /^tls\.cert: ".*garbage\.pem" holds no PEM certificate$/],
    ['a key as certificate', { cert: one.keyFile, key: one.keyFile }, 'tls.cert', /holds no PEM certificate/],
    ['key not PEM', { cert: one.certFile, key: garbage }, 'tls.key', /^tls\.key: ".*garbage\.pem" holds no unencrypted PEM private key$/],
    ['encrypted key', { cert: one.certFile, key: encrypted }, 'tls.key', /holds no unencrypted PEM private key/],
    ['key of another certificate', { cert: one.certFile, key: two.keyFile }, 'tls.key', /^tls\.key: ".*two\.key" is not the key of the certificate in ".*one\.pem"$/],
  ];
  for (const [what, paths, key, message] of cases) {
    const err = failure(() => readTlsFiles(paths));
    if (!t.ok(err, `${what}: TlsFileError`)) continue;
    t.equal(err!.key, key, `${what}: names ${key}`);
    t.match(err!.message, message, `${what}: ${err!.message}`);
  }
});
