/**
 * The portal: one page, a small app without a framework. Everything it shows comes from the
 * JSON API with the credentials the user types in; the page itself holds no data, so it is
 * served without auth. All data goes into the DOM via textContent, never innerHTML: names come
 * from the config and user agents from the network.
 *
 * Browser code: compiled by its own tsconfig.json (lib dom) to portal.js next to index.html.
 * The types below mirror the API's answers (src/http/view.ts), which this file cannot import.
 */
export {};

interface Registration {
  contact: string;
  expiresAt: string;
  source: string;
  transport: string;
  userAgent: string;
}
interface Device {
  username: string;
  registrations: Registration[];
}
interface Extension {
  number: string;
  name: string;
  busyOnBusy: boolean;
  activeCalls: number;
  devices: Device[];
}
/** One party of a call (GET /api/calls gives one row per party; rows of a call share the id). */
interface CallRow {
  id: string;
  extension: string;
  direction: 'inbound' | 'outbound';
  device: string;
  state: string;
  startedAt: string;
  aliveAt: { caller: string; callee: string };
}
type Me = { role: 'admin' } | { role: 'device'; username: string; extension: string };

interface Session {
  auth: string; // 'Bearer ...' | 'Basic ...'
  me: Me;
}

interface ApiResult<T> {
  status: number;
  data: T | null;
  message: string;
  retryAfter?: string | null;
}

type Child = Node | string | null | undefined | false;
type Props = Record<string, string | number | boolean | null | undefined | ((ev: Event) => unknown)>;

const KEY = 'sipbob.auth';
const app = document.getElementById('app')!;
const who = document.getElementById('who')!;
let session: Session | null = null;
let timer = 0;

function h(tag: string, props?: Props | null, kids?: Child[]): HTMLElement {
  const el = document.createElement(tag);
  if (props) {
    Object.keys(props).forEach(function (k) {
      const v = props[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'class') el.className = String(v);
      else if (k === 'text') el.textContent = String(v);
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v as (ev: Event) => unknown);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    });
  }
  (kids || []).forEach(function (c) {
    if (c === null || c === undefined || c === false) return;
    el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  });
  return el;
}

function input(id: string): HTMLInputElement {
  return document.getElementById(id) as HTMLInputElement;
}

function show(node: Node): void {
  app.replaceChildren(node);
}

function basic(user: string, pass: string): string {
  const bytes = new TextEncoder().encode(user + ':' + pass);
  let bin = '';
  bytes.forEach(function (b) {
    bin += String.fromCharCode(b);
  });
  return 'Basic ' + btoa(bin);
}

async function api<T>(method: string, path: string, body?: unknown, auth?: string): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { Accept: 'application/json', 'X-Requested-With': 'sipbob-portal' };
  const a = auth || (session && session.auth);
  if (a) headers['Authorization'] = a;
  const init: RequestInit = { method: method, headers: headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { status: 0, data: null, message: 'The server cannot be reached. Check your connection and try again.' };
  }
  let data: unknown = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  const message = data !== null && typeof data === 'object' ? (data as { message?: unknown }).message : undefined;
  return {
    status: res.status,
    data: data as T | null,
    message: (typeof message === 'string' && message) || res.statusText,
    retryAfter: res.headers.get('Retry-After'),
  };
}

function plural(n: number, one: string, many: string): string {
  return n + ' ' + (n === 1 ? one : many);
}

function relative(iso: string): string {
  const t = Date.parse(iso);
  if (isNaN(t)) return iso;
  const s = Math.round((t - Date.now()) / 1000);
  if (s <= 0) return 'expired';
  if (s < 90) return 'in ' + s + ' s';
  const m = Math.round(s / 60);
  if (m < 90) return 'in ' + m + ' min';
  return 'in ' + Math.round(m / 60) + ' h';
}

/** "just now", "12 s ago", "3 min ago", "2 h ago": how long ago an ISO time was. */
function ago(iso: string): string {
  const t = Date.parse(iso);
  if (isNaN(t)) return iso;
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 2) return 'just now';
  if (s < 90) return s + ' s ago';
  const m = Math.round(s / 60);
  if (m < 90) return m + ' min ago';
  return Math.round(m / 60) + ' h ago';
}

/** "42 s", "3 min", "1 h 5 min": how long something has been going on since an ISO time. */
function duration(iso: string): string {
  const t = Date.parse(iso);
  if (isNaN(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min';
  return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
}

function clock(iso: string): string {
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
}

function setWho(): void {
  who.replaceChildren();
  if (!session) {
    who.hidden = true;
    return;
  }
  const me = session.me;
  const label = me.role === 'admin' ? 'Administrator' : me.username + ' · extension ' + me.extension;
  who.appendChild(h('span', { class: 'who-name', text: label }));
  who.appendChild(h('button', { type: 'button', id: 'logout', onclick: signOut, text: 'Sign out' }));
  who.hidden = false;
}

function stopTimer(): void {
  if (timer) {
    clearInterval(timer);
    timer = 0;
  }
}

/** message: shown on the sign-in form; an Event when called as the Sign out button's handler. */
function signOut(message?: string | Event): void {
  stopTimer();
  sessionStorage.removeItem(KEY);
  session = null;
  setWho();
  history.replaceState(null, '', location.pathname);
  renderLogin(typeof message === 'string' ? message : '');
}

// ---- sign in -------------------------------------------------------------------------
function renderLogin(message: string): void {
  const err = h('div', { id: 'loginError', class: 'alert error', role: 'alert', hidden: !message, text: message || '' });
  const form = h('form', { class: 'card login', novalidate: true, onsubmit: onLogin }, [
    h('h1', { text: 'Sign in' }),
    h('p', { class: 'muted', text: 'Use your phone\u2019s SIP username and password to change your own extension, or the admin token to manage every extension.' }),
    h('div', { class: 'field' }, [
      h('label', { for: 'username', text: 'Device username' }),
      h('input', { id: 'username', name: 'username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' }),
    ]),
    h('div', { class: 'field' }, [
      h('label', { for: 'password', text: 'Password' }),
      h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password' }),
    ]),
    h('div', { class: 'divider', text: 'or, as administrator' }),
    h('div', { class: 'field' }, [
      h('label', { for: 'token', text: 'Admin token' }),
      h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off' }),
    ]),
    h('button', { id: 'login', class: 'primary', type: 'submit', text: 'Sign in' }),
    err,
  ]);
  show(form);
  input('username').focus();
  function fail(text: string): void {
    err.textContent = text;
    err.hidden = false;
  }
  async function onLogin(ev: Event): Promise<void> {
    ev.preventDefault();
    const token = input('token').value.trim();
    const user = input('username').value.trim();
    const pass = input('password').value;
    let auth: string;
    if (token) auth = 'Bearer ' + token;
    else if (user && pass) auth = basic(user, pass);
    else return fail('Enter your device username and password, or the admin token.');
    const button = document.getElementById('login') as HTMLButtonElement;
    button.disabled = true;
    const r = await api<Me>('GET', '/api/me', undefined, auth);
    button.disabled = false;
    if (r.status === 200 && r.data) {
      session = { auth: auth, me: r.data };
      sessionStorage.setItem(KEY, auth);
      setWho();
      route();
    } else if (r.status === 401) {
      fail(token ? 'This admin token is not valid.' : 'Wrong username or password.');
    } else if (r.status === 429) {
      fail('Too many failed sign-ins. Try again in ' + (r.retryAfter || 60) + ' seconds.');
    } else {
      fail(r.message || 'Sign-in failed.');
    }
  }
}

// ---- shared pieces ------------------------------------------------------------------
// A contact URI wraps only between its parts (user@, host:port, ;params), never inside a
// user name or address: each part is an inline-block that breaks internally only if it alone
// is wider than the cell.
function contact(uri: string): HTMLElement {
  const parts = uri.match(/[^@;]*@|;[^;]*|[^@;]+/g) || [uri];
  return h(
    'code',
    null,
    parts.map(function (p) {
      return h('span', { class: 'seg', text: p });
    }),
  );
}

/**
 * remove: given (admin, settings page), each registered device gets a "Remove registrations"
 * button in an extra column, on its first row.
 */
function deviceTable(ext: Extension, remove?: (username: string, button: HTMLButtonElement) => void): HTMLElement {
  const rows: HTMLElement[] = [];
  function action(d: Device, first: boolean): HTMLElement | null {
    if (!remove) return null;
    if (!first || d.registrations.length === 0) return h('td', { 'data-label': '', class: 'action' });
    const button = h('button', {
      type: 'button',
      class: 'small danger remove-registrations',
      'data-device': d.username,
      'aria-label': 'Remove registrations of ' + d.username,
      text: 'Remove registrations',
    }) as HTMLButtonElement;
    button.addEventListener('click', function () {
      remove(d.username, button);
    });
    return h('td', { 'data-label': '', class: 'action' }, [button]);
  }
  ext.devices.forEach(function (d) {
    if (d.registrations.length === 0) {
      rows.push(
        h('tr', null, [
          h('td', { 'data-label': 'Device', class: 'nowrap' }, [h('code', { text: d.username })]),
          h('td', { 'data-label': 'Status' }, [h('span', { class: 'dot off', text: 'Not registered' })]),
          h('td', { 'data-label': 'Contact', class: 'contact muted', text: '\u2014' }),
          h('td', { 'data-label': 'User agent', class: 'muted', text: '\u2014' }),
          h('td', { 'data-label': 'Expires', class: 'muted', text: '\u2014' }),
          action(d, true),
        ]),
      );
      return;
    }
    d.registrations.forEach(function (r, i) {
      rows.push(
        h('tr', null, [
          h('td', { 'data-label': 'Device', class: 'nowrap' }, [h('code', { text: d.username })]),
          h('td', { 'data-label': 'Status' }, [h('span', { class: 'dot ok', text: 'Registered' })]),
          h('td', { 'data-label': 'Contact', class: 'contact', title: 'from ' + r.source }, [contact(r.contact)]),
          h('td', { 'data-label': 'User agent', text: r.userAgent || '\u2014' }),
          h('td', { 'data-label': 'Expires', class: 'nowrap', title: new Date(r.expiresAt).toLocaleString(), text: relative(r.expiresAt) }),
          action(d, i === 0),
        ]),
      );
    });
  });
  if (rows.length === 0) {
    return h('p', { class: 'muted', text: 'No devices configured.' });
  }
  const columns: Array<[string, string]> = [
    ['Device', 'device'],
    ['Status', 'status'],
    ['Contact', 'contact'],
    ['User agent', 'ua'],
    ['Expires', 'expires'],
  ];
  if (remove) columns.push(['', 'action']);
  return h('table', { class: 'devices' }, [
    h('thead', null, [
      h(
        'tr',
        null,
        columns.map(function (c) {
          return h('th', { scope: 'col', class: 'col-' + c[1], text: c[0], 'aria-label': c[1] === 'action' ? 'Actions' : null });
        }),
      ),
    ]),
    h('tbody', null, rows),
  ]);
}

function bobBadge(on: boolean): HTMLElement {
  return h('span', { class: on ? 'badge on' : 'badge', text: on ? 'Busy on Busy' : 'Shared use' });
}

function callsBadge(n: number): HTMLElement {
  return h('span', { class: n > 0 ? 'badge live' : 'badge', text: n > 0 ? plural(n, 'active call', 'active calls') : 'No active calls' });
}

function failPage(r: ApiResult<unknown>): void {
  if (r.status === 401) return signOut('Your session has ended. Please sign in again.');
  show(
    h('div', { class: 'card' }, [
      h('h1', { text: r.status === 404 ? 'Not found' : 'Something went wrong' }),
      h('p', { class: 'muted', text: r.message || 'Please try again.' }),
      session && session.me.role === 'admin' ? h('a', { class: 'button', href: '#/', text: 'All extensions' }) : null,
    ]),
  );
}

// ---- admin overview -----------------------------------------------------------------
async function renderOverview(): Promise<void> {
  const r = await api<Extension[]>('GET', '/api/extensions');
  if (!isRoute('overview')) return;
  if (r.status !== 200 || r.data === null) return failPage(r);
  const list = r.data;
  let devices = 0,
    registered = 0,
    calls = 0;
  list.forEach(function (e) {
    calls += e.activeCalls;
    e.devices.forEach(function (d) {
      devices++;
      if (d.registrations.length) registered++;
    });
  });
  const cards = list.map(function (e) {
    const href = '#/extensions/' + encodeURIComponent(e.number);
    return h('article', { class: 'card ext', 'data-extension': e.number }, [
      h('div', { class: 'ext-head' }, [
        h('a', { class: 'ext-title', href: href }, [h('span', { class: 'ext-number', text: e.number }), h('span', { class: 'ext-name', text: e.name })]),
        h('div', { class: 'badges' }, [bobBadge(e.busyOnBusy), callsBadge(e.activeCalls)]),
        h('a', { class: 'button', href: href, 'aria-label': 'Settings of extension ' + e.number, text: 'Settings' }),
      ]),
      deviceTable(e),
    ]);
  });
  show(
    h('section', null, [
      h('div', { class: 'page-head' }, [
        h('div', null, [
          h('h1', { text: 'Extensions' }),
          h('p', {
            class: 'subtitle',
            text:
              plural(list.length, 'extension', 'extensions') +
              ' \u00b7 ' +
              registered +
              ' of ' +
              plural(devices, 'device', 'devices') +
              ' registered \u00b7 ' +
              plural(calls, 'active call', 'active calls'),
          }),
        ]),
        h('div', { class: 'head-actions' }, [
          h('a', { class: 'button', id: 'callsLink', href: '#/calls', text: 'Active calls' }),
          h('button', { type: 'button', id: 'refresh', onclick: renderOverview, text: 'Refresh' }),
        ]),
      ]),
      cards.length ? h('div', null, cards) : h('div', { class: 'card empty', text: 'No extensions are configured.' }),
    ]),
  );
}

// ---- settings of one extension --------------------------------------------------------
async function renderSettings(number: string): Promise<void> {
  const r = await api<Extension>('GET', '/api/extensions/' + encodeURIComponent(number));
  if (!isRoute('settings', number)) return;
  if (r.status !== 200 || r.data === null) return failPage(r);
  const ext = r.data;
  let saved = ext.busyOnBusy;

  const box = h('input', { type: 'checkbox', id: 'busyOnBusy', 'aria-describedby': 'bob-help', checked: saved }) as HTMLInputElement;
  const stateText = h('span', { class: 'state badge' });
  const status = h('span', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' });
  const optOff = h('div', { class: 'option' }, [
    h('strong', { text: 'Off \u2014 shared use' }),
    'For example a service hotline: new calls keep ringing on every device while colleagues are already on calls.',
  ]);
  const optOn = h('div', { class: 'option' }, [
    h('strong', { text: 'On \u2014 one person, several devices' }),
    'While you are on a call on any of your devices, further callers hear busy instead of ringing your other devices.',
  ]);
  const save = h('button', { type: 'button', id: 'save', class: 'primary', text: 'Save' }) as HTMLButtonElement;

  function sync(): void {
    optOn.classList.toggle('active', box.checked);
    optOff.classList.toggle('active', !box.checked);
    stateText.textContent = box.checked ? 'On' : 'Off';
    stateText.className = box.checked ? 'state badge on' : 'state badge';
  }
  box.addEventListener('change', function () {
    sync();
    status.className = 'status pending';
    status.textContent = box.checked === saved ? '' : 'Not saved yet';
  });
  save.addEventListener('click', async function () {
    save.disabled = true;
    status.className = 'status pending';
    status.textContent = 'Saving\u2026';
    const res = await api<Extension>('PATCH', '/api/extensions/' + encodeURIComponent(ext.number), { busyOnBusy: box.checked });
    save.disabled = false;
    if (res.status === 200 && res.data) {
      saved = res.data.busyOnBusy;
      box.checked = saved;
      sync();
      status.className = 'status ok';
      status.textContent = 'Saved \u2014 applies to the next call';
    } else if (res.status === 401) {
      signOut('Your session has ended. Please sign in again.');
    } else {
      status.className = 'status error';
      status.textContent = 'Not saved: ' + (res.message || 'error ' + res.status);
    }
  });
  sync();

  const admin = session !== null && session.me.role === 'admin';
  const devicesBox = h('div', { id: 'devices' });
  const deviceStatus = h('p', { id: 'deviceStatus', class: 'status', role: 'status', 'aria-live': 'polite' });
  function devicesTable(e: Extension): HTMLElement {
    return deviceTable(e, admin ? removeRegistrations : undefined);
  }
  async function removeRegistrations(username: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    deviceStatus.className = 'status pending';
    deviceStatus.textContent = 'Removing the registrations of ' + username + '\u2026';
    const res = await api<null>('DELETE', '/api/devices/' + encodeURIComponent(username) + '/registrations');
    if (res.status === 401) return signOut('Your session has ended. Please sign in again.');
    if (res.status === 204) {
      deviceStatus.className = 'status ok';
      deviceStatus.textContent = 'Registrations of ' + username + ' removed. The phone is reachable again once it registers anew.';
    } else {
      button.disabled = false;
      deviceStatus.className = 'status error';
      deviceStatus.textContent = 'Not removed: ' + (res.message || 'error ' + res.status);
    }
    const fresh = await api<Extension>('GET', '/api/extensions/' + encodeURIComponent(ext.number));
    if (fresh.status === 200 && fresh.data) devicesBox.replaceChildren(devicesTable(fresh.data));
  }
  devicesBox.appendChild(devicesTable(ext));
  show(
    h('section', null, [
      admin ? h('a', { class: 'back', href: '#/', text: '\u2190 All extensions' }) : null,
      h('div', { class: 'page-head' }, [
        h('div', null, [h('h1', { text: 'Extension ' + ext.number }), h('p', { class: 'subtitle', text: ext.name })]),
        callsBadge(ext.activeCalls),
      ]),
      h('article', { class: 'card' }, [
        h('h2', { text: 'Incoming calls' }),
        h('div', { class: 'check-row' }, [box, h('label', { for: 'busyOnBusy', text: 'Busy on Busy' }), stateText]),
        h('div', { id: 'bob-help', class: 'options' }, [optOff, optOn]),
        h('div', { class: 'actions' }, [save, status]),
      ]),
      h('article', { class: 'card' }, [h('h2', { text: 'Devices' }), devicesBox, admin ? deviceStatus : null]),
    ]),
  );
}

// ---- active calls (admin) -----------------------------------------------------------------
interface CallGroup {
  id: string;
  startedAt: string;
  aliveAt: { caller: string; callee: string };
  /** The party whose extension placed the call (direction outbound); none for a trunk caller. */
  caller?: CallRow;
  /** The party whose extension took the call (direction inbound); none for a call out to a trunk. */
  callee?: CallRow;
}

/** The per-party rows of GET /api/calls as one entry per call, in the order the API lists them. */
function groupCalls(rows: CallRow[]): CallGroup[] {
  const byId = new Map<string, CallGroup>();
  rows.forEach(function (r) {
    let g = byId.get(r.id);
    if (!g) {
      g = { id: r.id, startedAt: r.startedAt, aliveAt: r.aliveAt };
      byId.set(r.id, g);
    }
    if (r.direction === 'outbound') g.caller = g.caller || r;
    else g.callee = g.callee || r;
  });
  return Array.from(byId.values());
}

function partyBox(role: 'Caller' | 'Callee', p: CallRow | undefined, aliveAt: string, names: Map<string, string>): HTMLElement {
  const head = h('div', { class: 'party-role', text: role });
  const alive = h('div', { class: 'alive dot ok', title: new Date(aliveAt).toLocaleString(), text: 'Last alive ' + ago(aliveAt) });
  if (!p) {
    return h('div', { class: 'party external', 'data-party': role.toLowerCase() }, [
      head,
      h('div', { class: 'party-ext', text: 'Outside line' }),
      h('div', { class: 'party-device muted', text: role === 'Caller' ? 'via a trunk \u00b7 incoming call' : 'via a trunk \u00b7 outgoing call' }),
      alive,
    ]);
  }
  const name = names.get(p.extension);
  return h('div', { class: 'party', 'data-party': role.toLowerCase(), 'data-extension': p.extension }, [
    head,
    h('div', { class: 'party-ext' }, [
      h('a', { href: '#/extensions/' + encodeURIComponent(p.extension), class: 'ext-number', text: p.extension }),
      name ? h('span', { class: 'ext-name', text: name }) : null,
    ]),
    h('div', { class: 'party-device' }, [
      p.device ? h('code', { text: p.device }) : h('span', { class: 'muted', text: 'unknown device' }),
      ' \u00b7 ',
      h('span', { class: 'muted', text: p.direction === 'outbound' ? 'outgoing call' : 'incoming call' }),
    ]),
    alive,
  ]);
}

function partyLabel(p: CallRow | undefined): string {
  return p ? p.extension + (p.device ? ' (' + p.device + ')' : '') : 'an outside line';
}

async function renderCalls(notice?: { ok: boolean; text: string }): Promise<void> {
  const [r, exts] = await Promise.all([api<CallRow[]>('GET', '/api/calls'), api<Extension[]>('GET', '/api/extensions')]);
  if (!isRoute('calls')) return;
  if (r.status !== 200 || r.data === null) return failPage(r);
  const names = new Map<string, string>();
  (exts.status === 200 && exts.data ? exts.data : []).forEach(function (e) {
    names.set(e.number, e.name);
  });
  const calls = groupCalls(r.data);
  const status = h('p', { id: 'callsStatus', class: notice ? 'status ' + (notice.ok ? 'ok' : 'error') : 'status', role: 'status', 'aria-live': 'polite', text: notice ? notice.text : '' });

  async function end(c: CallGroup, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    status.className = 'status pending';
    status.textContent = 'Ending the call\u2026';
    const res = await api<null>('DELETE', '/api/calls/' + encodeURIComponent(c.id));
    if (res.status === 401) return signOut('Your session has ended. Please sign in again.');
    const who = partyLabel(c.caller) + ' \u2192 ' + partyLabel(c.callee);
    if (!isRoute('calls')) return;
    if (res.status === 204) return renderCalls({ ok: true, text: 'Call ended: ' + who + '.' });
    if (res.status === 404) return renderCalls({ ok: true, text: 'That call had already ended: ' + who + '.' });
    button.disabled = false;
    status.className = 'status error';
    status.textContent = 'Not ended: ' + (res.message || 'error ' + res.status);
  }

  const cards = calls.map(function (c) {
    const button = h('button', {
      type: 'button',
      class: 'danger end-call',
      'aria-label': 'End call ' + partyLabel(c.caller) + ' to ' + partyLabel(c.callee),
      text: 'End call',
    }) as HTMLButtonElement;
    button.addEventListener('click', function () {
      void end(c, button);
    });
    return h('article', { class: 'card call', 'data-call-id': c.id }, [
      h('div', { class: 'call-parties' }, [
        partyBox('Caller', c.caller, c.aliveAt.caller, names),
        h('div', { class: 'call-arrow', 'aria-hidden': 'true', text: '\u2192' }),
        partyBox('Callee', c.callee, c.aliveAt.callee, names),
      ]),
      h('div', { class: 'call-foot' }, [
        h('div', { class: 'call-since' }, [
          h('span', { title: new Date(c.startedAt).toLocaleString(), text: 'Since ' + clock(c.startedAt) + ' \u00b7 ' + duration(c.startedAt) }),
          h('code', { class: 'call-id muted', title: c.id, text: c.id.split(';')[0] || c.id }),
        ]),
        button,
      ]),
    ]);
  });
  show(
    h('section', null, [
      h('a', { class: 'back', href: '#/', text: '\u2190 All extensions' }),
      h('div', { class: 'page-head' }, [
        h('div', null, [
          h('h1', { text: 'Active calls' }),
          h('p', { class: 'subtitle', text: plural(calls.length, 'call', 'calls') + ' in progress \u00b7 as of ' + clock(new Date().toISOString()) }),
        ]),
        h('button', {
          type: 'button',
          id: 'refreshCalls',
          onclick: function () {
            void renderCalls();
          },
          text: 'Refresh',
        }),
      ]),
      status,
      cards.length ? h('div', { id: 'calls' }, cards) : h('div', { id: 'calls', class: 'card empty', text: 'No calls in progress.' }),
    ]),
  );
}

// ---- routing --------------------------------------------------------------------------
let current = { name: '', number: '' };
function isRoute(name: string, number?: string): boolean {
  return current.name === name && (number === undefined || current.number === number);
}

function route(): void {
  stopTimer();
  if (!session) return renderLogin('');
  const m = /^#\/extensions\/([^/]+)$/.exec(location.hash);
  let number = m ? decodeURIComponent(m[1]!) : '';
  const me = session.me;
  if (me.role === 'admin' && location.hash === '#/calls') {
    // Shown and refreshed on demand (Refresh, End call); no polling.
    current = { name: 'calls', number: '' };
    void renderCalls();
    return;
  }
  if (me.role === 'device') {
    // A device user has exactly one page: their own extension.
    if (number !== me.extension) {
      number = me.extension;
      history.replaceState(null, '', '#/extensions/' + encodeURIComponent(number));
    }
  }
  if (number) {
    current = { name: 'settings', number: number };
    void renderSettings(number);
  } else {
    current = { name: 'overview', number: '' };
    void renderOverview();
    timer = setInterval(function () {
      if (document.visibilityState === 'visible') void renderOverview();
    }, 15000);
  }
}

window.addEventListener('hashchange', route);

async function start(): Promise<void> {
  const auth = sessionStorage.getItem(KEY);
  if (!auth) return renderLogin('');
  const r = await api<Me>('GET', '/api/me', undefined, auth);
  if (r.status === 200 && r.data) {
    session = { auth: auth, me: r.data };
    setWho();
    route();
  } else {
    sessionStorage.removeItem(KEY);
    renderLogin(r.status === 401 ? '' : r.message || '');
  }
}
void start();
