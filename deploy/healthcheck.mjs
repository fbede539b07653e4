#!/usr/bin/env node
// Health probe for Docker's HEALTHCHECK (and any monitor that runs a command): exit 0 when
// sipbob's /healthz answers 200 within 3 s, else 1. The slim Node images have no curl or wget.
// URL: the first argument, else SIPBOB_HEALTH_URL, else http://127.0.0.1:8080/healthz.
// Over https the certificate is not verified: the probe runs beside the proxy and only asks
// whether it is up, and the address it dials is not the name the certificate was issued for.
import http from 'node:http';
import https from 'node:https';

const url = new URL(process.argv[2] || process.env.SIPBOB_HEALTH_URL || 'http://127.0.0.1:8080/healthz');
const client = url.protocol === 'https:' ? https : http;
const req = client.get(url, { timeout: 3000, rejectUnauthorized: false }, (res) => {
  res.resume();
  if (res.statusCode !== 200) console.error(`healthcheck: ${url.href}: HTTP ${res.statusCode}`);
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
req.on('error', (err) => {
  console.error(`healthcheck: ${url.href}: ${err.message}`);
  process.exit(1);
});
