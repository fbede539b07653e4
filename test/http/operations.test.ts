/**
 * Operations on calls and devices (issue 11) over real HTTP against an in-test fake AdminView:
 * DELETE /api/calls/{id}, DELETE /api/devices/{username}/registrations, and the aliveAt of
 * GET /api/calls. Who may do what is access.ts's job; here it is checked for the new routes.
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startHttp } from '../../src/http/server.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { AdminView, CallView, ExtensionView } from '../../src/http/view.js';

const ADMIN_TOKEN = 'ops-admin-token-7Hq2';
const DEVICES: Record<string, { password: string; extension: string }> = {
  'anna-desk': { password: 'ops-pw-anna-desk', extension: '200' },
  'hotline-desk-1': { password: 'ops-pw-hotline-1', extension: '100' },
};
/** A real-looking call id: Call-ID;from-tag;to-tag with '@', ';', '%', '+', '/' and '=' in it. */
const CALL_ID = 'a84b4c76e66710@pc33.atlanta.example.com;1928301774;a6c85cf/+x=%41';
const LONG_ID = `${'x'.repeat(300)}@192.0.2.7;${'f'.repeat(40)};${'t'.repeat(40)}`;
const STARTED = '2026-12-03T09:00:00.000Z';
const ALIVE = { caller: '2026-12-03T09:04:30.000Z', callee: '2026-12-03T09:04:31.000Z' };

class FakeView implements AdminView {
  ended: string[] = [];
  removed: string[] = [];
  private readonly calls = new Set([CALL_ID, LONG_ID]);

  listExtensions(): ExtensionView[] {
    return [];
  }
  getExtension(): ExtensionView | undefined {
    return undefined;
  }
  setBusyOnBusy(): boolean {
    return false;
  }
  listCalls(): CallView[] {
    return [...this.calls].flatMap((id) => [
      { id, extension: '200', direction: 'outbound' as const, device: 'anna-desk', state: 'confirmed' as const, startedAt: STARTED, aliveAt: ALIVE },
      { id, extension: '100', direction: 'inbound' as const, device: 'hotline-desk-1', state: 'confirmed' as const, startedAt: STARTED, aliveAt: ALIVE },
    ]);
  }
  endCall(id: string): boolean {
    this.ended.push(id);
    return this.calls.delete(id);
  }
  removeRegistrations(username: string): boolean {
    this.removed.push(username);
    return username in DEVICES;
  }
  deviceLogin(username: string, password: string): string | undefined {
    const d = DEVICES[username];
    return d !== undefined && d.password === password ? d.extension : undefined;
  }
  adminToken(): string | undefined {
    return ADMIN_TOKEN;
  }
  ready(): boolean {
    return true;
  }
}

const logLines: Array<Record<string, unknown>> = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  }),
);

const view = new FakeView();
const { registry } = createMetrics({ registeredDevices: () => 0, contacts: () => 0, activeCallsByExtension: () => new Map(), transactionsInFlight: () => 0, endedCalls: () => new Map(), keepaliveProbes: () => ({ sent: 0, failed: 0 }) });
const srv = await startHttp({ host: '127.0.0.1', port: 0, view, metrics: registry, logger });
t.teardown(() => srv.close());

const admin = `Bearer ${ADMIN_TOKEN}`;
const device = 'Basic ' + Buffer.from(`anna-desk:${DEVICES['anna-desk']!.password}`).toString('base64');

async function req(method: string, path: string, auth?: string): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const res = await fetch(`http://127.0.0.1:${srv.address.port}${path}`, { method, headers: auth ? { authorization: auth } : {} });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const callPath = (id: string) => `/api/calls/${encodeURIComponent(id)}`;

t.test('GET /api/calls: every row tells when each end last proved alive', async (t) => {
  const r = await req('GET', '/api/calls', admin);
  t.equal(r.status, 200);
  const rows = r.json as CallView[];
  t.equal(rows.length, 4);
  for (const row of rows) {
    t.same(row.aliveAt, ALIVE, `${row.device}: aliveAt`);
    t.same(Object.keys(row).sort(), ['aliveAt', 'device', 'direction', 'extension', 'id', 'startedAt', 'state']);
  }
});

t.test('DELETE /api/calls/{id}: anonymous 401, device 403, and the view is never asked', async (t) => {
  const anon = await req('DELETE', callPath(CALL_ID));
  t.equal(anon.status, 401);
  t.match(anon.json, { statusCode: 401, error: 'Unauthorized' });
  const wrong = await req('DELETE', callPath(CALL_ID), 'Bearer not-the-token');
  t.equal(wrong.status, 401);
  const dev = await req('DELETE', callPath(CALL_ID), device);
  t.equal(dev.status, 403, 'a device may not end calls, not even its own');
  t.match(dev.json, { statusCode: 403, error: 'Forbidden' });
  t.same(view.ended, [], 'endCall was not called');
});

t.test('DELETE /api/calls/{id}: an unknown id is 404 with the usual error body', async (t) => {
  const r = await req('DELETE', callPath('no-such-call;x;y'), admin);
  t.equal(r.status, 404);
  t.same(r.json, { statusCode: 404, error: 'Not Found', message: 'No active call has this id' });
  t.same(view.ended, ['no-such-call;x;y'], 'the view got the decoded id');
});

t.test('DELETE /api/calls/{id}: a URL-encoded id reaches the view decoded; 204 without a body', async (t) => {
  view.ended = [];
  const r = await req('DELETE', callPath(CALL_ID), admin);
  t.equal(r.status, 204);
  t.equal(r.text, '', 'no body');
  t.equal(r.headers.get('content-type'), null, 'no content type');
  t.same(view.ended, [CALL_ID], 'endCall got the id exactly as GET /api/calls lists it');
  const rows = (await req('GET', '/api/calls', admin)).json as CallView[];
  t.notOk(rows.some((c) => c.id === CALL_ID), 'the call is gone from the list');
  const again = await req('DELETE', callPath(CALL_ID), admin);
  t.equal(again.status, 404, 'ending it twice: 404');
  const line = logLines.find((l) => l['msg'] === 'call ended through the API');
  t.match(line, { level: 30, id: CALL_ID, by: 'admin' }, 'logged with the id');
});

t.test('DELETE /api/calls/{id}: an id as it comes (";" and "@" not encoded) and a long one work too', async (t) => {
  view.ended = [];
  const raw = await req('DELETE', '/api/calls/abc@192.0.2.1;ft;tt', admin);
  t.equal(raw.status, 404);
  t.same(view.ended, ['abc@192.0.2.1;ft;tt'], 'the semicolons are part of the id, not path parameters');
  const long = await req('DELETE', callPath(LONG_ID), admin);
  t.equal(long.status, 204, `an id of ${encodeURIComponent(LONG_ID).length} characters encoded`);
  t.same(view.ended.at(-1), LONG_ID);
  const longest = await req('DELETE', callPath('y'.repeat(1024)), admin);
  t.equal(longest.status, 404, '1024 characters reach the view');
  const tooLong = await req('DELETE', callPath('y'.repeat(1025)), admin);
  t.equal(tooLong.status, 414, 'more than 1024 characters: 414 from the router');
  t.same(tooLong.json, { statusCode: 414, error: 'URI Too Long', message: 'A path parameter is too long' }, 'the one error shape, no path quoted');
  const bad = await req('DELETE', '/api/calls/%E0%A4%A', admin);
  t.equal(bad.status, 400, 'a broken %-escape: 400');
  t.same(bad.json, { statusCode: 400, error: 'Bad Request', message: 'The path is not validly URL-encoded' });
});

t.test('/api/calls/{id}: other methods are 405 with Allow: DELETE', async (t) => {
  for (const method of ['GET', 'PATCH', 'POST', 'PUT']) {
    const r = await req(method, callPath(CALL_ID), admin);
    t.equal(r.status, 405, method);
    t.equal(r.headers.get('allow'), 'DELETE', `${method}: Allow`);
  }
  t.equal((await req('DELETE', '/api/calls', admin)).status, 405, 'DELETE on the list is not "end every call"');
});

t.test('DELETE /api/devices/{username}/registrations', async (t) => {
  const path = '/api/devices/anna-desk/registrations';
  t.equal((await req('DELETE', path)).status, 401, 'anonymous: 401');
  const own = await req('DELETE', path, device);
  t.equal(own.status, 403, 'a device user: 403, even for its own device');
  t.same(view.removed, [], 'the view was not asked');

  const ok = await req('DELETE', path, admin);
  t.equal(ok.status, 204);
  t.equal(ok.text, '');
  t.same(view.removed, ['anna-desk']);
  t.match(
    logLines.find((l) => l['msg'] === 'registrations removed through the API'),
    { level: 30, username: 'anna-desk', by: 'admin' },
  );

  const unknown = await req('DELETE', '/api/devices/ghost/registrations', admin);
  t.equal(unknown.status, 404);
  t.same(unknown.json, { statusCode: 404, error: 'Not Found', message: 'No device has this username' });

  const encoded = await req('DELETE', `/api/devices/${encodeURIComponent('hotline-desk-1')}/registrations`, admin);
  t.equal(encoded.status, 204);
  const odd = await req('DELETE', `/api/devices/${encodeURIComponent('a b/c')}/registrations`, admin);
  t.equal(odd.status, 404, 'an encoded "/" stays inside the username');
  t.same(view.removed.slice(-2), ['hotline-desk-1', 'a b/c']);

  const get = await req('GET', path, admin);
  t.equal(get.status, 405);
  t.equal(get.headers.get('allow'), 'DELETE');
  t.equal((await req('DELETE', '/api/devices/anna-desk', admin)).status, 404, 'no route without /registrations');
});
