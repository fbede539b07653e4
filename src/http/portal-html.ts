/**
 * The portal: one static page with inline CSS and a small vanilla JS app (no framework, no
 * build step). Kept as a TS string module so it is found the same way from src/ (tests) and
 * dist/ (npm start) without copying assets.
 *
 * Everything the page shows comes from the JSON API with the credentials the user types in;
 * the page itself holds no data, so it is served without auth. All data goes into the DOM via
 * textContent, never innerHTML: names come from the config and user agents from the network.
 *
 * The JS below avoids backticks and "${" because it sits inside a template literal.
 */
import { createHash } from 'node:crypto';

const CSS = String.raw`
:root {
  --bg: #f3f5f8; --card: #fff; --line: #e2e7ee; --text: #18212c; --muted: #5d6978;
  --accent: #1f5bd8; --accent-dark: #1848ad; --accent-soft: #e9f0fd;
  --ok: #11804f; --ok-soft: #e5f5ec; --warn: #b45309; --warn-soft: #fdf1e2; --err: #b42318; --err-soft: #fdecea;
  --radius: 12px;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 13px; }
.topbar {
  background: var(--card); border-bottom: 1px solid var(--line);
  display: flex; align-items: center; justify-content: space-between; gap: 12px;
  padding: 10px 20px; position: sticky; top: 0; z-index: 1;
}
.brand { display: flex; align-items: center; gap: 10px; font-weight: 650; letter-spacing: -0.01em; }
.brand-mark {
  width: 28px; height: 28px; border-radius: 8px; background: var(--accent); color: #fff;
  display: grid; place-items: center; font-size: 15px; font-weight: 700;
}
.brand-sub { color: var(--muted); font-weight: 400; }
.who { display: flex; align-items: center; gap: 12px; color: var(--muted); font-size: 14px; }
.container { max-width: 980px; margin: 0 auto; padding: 24px 20px 48px; }
.page-head { display: flex; align-items: flex-end; justify-content: space-between; gap: 12px; margin-bottom: 18px; flex-wrap: wrap; }
h1 { font-size: 24px; line-height: 1.25; margin: 0; letter-spacing: -0.01em; }
h2 { font-size: 17px; margin: 0 0 12px; }
.muted { color: var(--muted); }
.subtitle { margin: 4px 0 0; color: var(--muted); }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04); padding: 18px 20px; margin-bottom: 16px;
}
.ext-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; margin-bottom: 12px; }
.ext-title { display: flex; align-items: baseline; gap: 10px; color: var(--text); flex: 1 1 auto; min-width: 0; }
.ext-number { font-size: 20px; font-weight: 700; font-variant-numeric: tabular-nums; }
.ext-name { font-size: 16px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badges { display: flex; gap: 6px; flex-wrap: wrap; }
.badge {
  display: inline-flex; align-items: center; gap: 6px; border-radius: 999px; padding: 2px 10px;
  font-size: 12.5px; font-weight: 550; background: #eef1f5; color: var(--muted); white-space: nowrap;
}
.badge.on { background: var(--accent-soft); color: var(--accent-dark); }
.badge.live { background: var(--warn-soft); color: var(--warn); }
.dot { display: inline-flex; align-items: center; gap: 7px; white-space: nowrap; }
.dot::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #b7c0cc; flex: none; }
.dot.ok { color: var(--ok); }
.dot.ok::before { background: var(--ok); }
.dot.off { color: var(--muted); }
table.devices { width: 100%; border-collapse: collapse; font-size: 14px; }
table.devices th {
  text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: 0.04em; padding: 8px 10px; border-bottom: 1px solid var(--line);
}
table.devices td { padding: 9px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.devices tr:last-child td { border-bottom: 0; }
table.devices td.contact .seg { display: inline-block; max-width: 100%; overflow-wrap: anywhere; }
table.devices .nowrap { white-space: nowrap; }
table.devices th.col-device { width: 17%; }
table.devices th.col-status { width: 15%; }
table.devices th.col-ua { width: 24%; }
table.devices th.col-expires { width: 11%; }
.button, button {
  font: inherit; font-weight: 600; border-radius: 8px; border: 1px solid var(--line); background: var(--card);
  color: var(--text); padding: 7px 14px; cursor: pointer; display: inline-flex; align-items: center; gap: 6px;
  min-height: 38px; text-decoration: none; -webkit-tap-highlight-color: transparent;
}
.button:hover, button:hover { background: #f6f8fb; text-decoration: none; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.primary:hover { background: var(--accent-dark); }
button:disabled { opacity: 0.6; cursor: default; }
button:focus-visible, .button:focus-visible, a:focus-visible, input:focus-visible {
  outline: 3px solid rgba(31, 91, 216, 0.35); outline-offset: 2px;
}
.back { display: inline-block; margin-bottom: 12px; font-weight: 550; }
.summary { display: flex; gap: 8px; flex-wrap: wrap; }
.login { max-width: 420px; margin: 40px auto 0; }
.login h1 { margin-bottom: 6px; }
.field { display: flex; flex-direction: column; gap: 6px; margin: 14px 0; }
.field label { font-weight: 600; font-size: 14px; }
.field input {
  font: inherit; font-size: 16px; /* 16px: iOS zooms into smaller inputs */
  padding: 9px 12px; border: 1px solid #cdd5df; border-radius: 8px; background: #fff; min-height: 42px;
}
.field input:focus { border-color: var(--accent); outline: none; box-shadow: 0 0 0 3px rgba(31, 91, 216, 0.18); }
.divider { display: flex; align-items: center; gap: 12px; color: var(--muted); font-size: 13px; margin: 20px 0 6px; }
.divider::before, .divider::after { content: ""; flex: 1; height: 1px; background: var(--line); }
.login button.primary { width: 100%; justify-content: center; margin-top: 10px; min-height: 44px; }
.alert { border-radius: 8px; padding: 10px 12px; font-size: 14px; margin-top: 12px; }
.alert.error { background: var(--err-soft); color: var(--err); }
.check-row {
  display: flex; align-items: center; gap: 12px; padding: 14px 16px; border: 1px solid var(--line);
  border-radius: 10px; background: #fafbfd;
}
.check-row input { width: 22px; height: 22px; margin: 0; accent-color: var(--accent); flex: none; }
.check-row label { font-weight: 650; font-size: 16px; cursor: pointer; }
.check-row .state { margin-left: auto; }
.options { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin: 14px 0 4px; }
.option { border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; color: var(--muted); }
.option strong { display: block; color: var(--text); margin-bottom: 2px; }
.option.active { border-color: var(--accent); background: var(--accent-soft); color: var(--text); }
.actions { display: flex; align-items: center; gap: 14px; margin-top: 16px; flex-wrap: wrap; }
.status { font-size: 14px; font-weight: 550; }
.status.ok { color: var(--ok); }
.status.error { color: var(--err); }
.status.pending { color: var(--muted); font-weight: 400; }
.empty { text-align: center; color: var(--muted); padding: 28px; }
@media (max-width: 680px) {
  .topbar { padding: 10px 14px; }
  .brand-sub, .who .who-name { display: none; }
  .container { padding: 16px 12px 40px; }
  .card { padding: 16px 14px; }
  h1 { font-size: 21px; }
  .options { grid-template-columns: 1fr; }
  .actions button.primary { flex: 1 1 100%; justify-content: center; min-height: 46px; }
  table.devices thead { display: none; }
  table.devices, table.devices tbody, table.devices tr, table.devices td { display: block; width: 100%; }
  table.devices tr { border-bottom: 1px solid var(--line); padding: 8px 0; }
  table.devices tr:last-child { border-bottom: 0; }
  table.devices td { border: 0; padding: 3px 0; display: flex; justify-content: space-between; gap: 16px; text-align: right; }
  table.devices td::before { content: attr(data-label); color: var(--muted); font-size: 13px; text-align: left; flex: none; }
  table.devices td.contact code { text-align: right; min-width: 0; }
}
`;

const JS = String.raw`
(function () {
  'use strict';
  var KEY = 'sipbob.auth';
  var app = document.getElementById('app');
  var who = document.getElementById('who');
  var session = null; // { auth: 'Bearer ...' | 'Basic ...', me: { role, username?, extension? } }
  var timer = 0;

  function h(tag, props, kids) {
    var el = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === undefined || v === null || v === false) return;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
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

  function show(node) {
    app.replaceChildren(node);
  }

  function basic(user, pass) {
    var bytes = new TextEncoder().encode(user + ':' + pass);
    var bin = '';
    bytes.forEach(function (b) { bin += String.fromCharCode(b); });
    return 'Basic ' + btoa(bin);
  }

  async function api(method, path, body, auth) {
    var headers = { 'Accept': 'application/json', 'X-Requested-With': 'sipbob-portal' };
    var a = auth || (session && session.auth);
    if (a) headers['Authorization'] = a;
    var init = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { status: 0, data: null, message: 'The server cannot be reached. Check your connection and try again.' };
    }
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return {
      status: res.status,
      data: data,
      message: (data && data.message) || res.statusText,
      retryAfter: res.headers.get('Retry-After')
    };
  }

  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

  function relative(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return iso;
    var s = Math.round((t - Date.now()) / 1000);
    if (s <= 0) return 'expired';
    if (s < 90) return 'in ' + s + ' s';
    var m = Math.round(s / 60);
    if (m < 90) return 'in ' + m + ' min';
    return 'in ' + Math.round(m / 60) + ' h';
  }

  function setWho() {
    who.replaceChildren();
    if (!session) { who.hidden = true; return; }
    var me = session.me;
    var label = me.role === 'admin' ? 'Administrator' : me.username + ' · extension ' + me.extension;
    who.appendChild(h('span', { class: 'who-name', text: label }));
    who.appendChild(h('button', { type: 'button', id: 'logout', onclick: signOut, text: 'Sign out' }));
    who.hidden = false;
  }

  function stopTimer() {
    if (timer) { clearInterval(timer); timer = 0; }
  }

  function signOut(message) {
    stopTimer();
    sessionStorage.removeItem(KEY);
    session = null;
    setWho();
    history.replaceState(null, '', location.pathname);
    renderLogin(typeof message === 'string' ? message : '');
  }

  // ---- sign in -------------------------------------------------------------------------
  function renderLogin(message) {
    var err = h('div', { id: 'loginError', class: 'alert error', role: 'alert', hidden: !message, text: message || '' });
    var form = h('form', { class: 'card login', novalidate: true, onsubmit: onLogin }, [
      h('h1', { text: 'Sign in' }),
      h('p', { class: 'muted', text: 'Use your phone\u2019s SIP username and password to change your own extension, or the admin token to manage every extension.' }),
      h('div', { class: 'field' }, [
        h('label', { for: 'username', text: 'Device username' }),
        h('input', { id: 'username', name: 'username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' })
      ]),
      h('div', { class: 'field' }, [
        h('label', { for: 'password', text: 'Password' }),
        h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password' })
      ]),
      h('div', { class: 'divider', text: 'or, as administrator' }),
      h('div', { class: 'field' }, [
        h('label', { for: 'token', text: 'Admin token' }),
        h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off' })
      ]),
      h('button', { id: 'login', class: 'primary', type: 'submit', text: 'Sign in' }),
      err
    ]);
    show(form);
    (document.getElementById('username')).focus();
    function fail(text) {
      err.textContent = text;
      err.hidden = false;
    }
    async function onLogin(ev) {
      ev.preventDefault();
      var token = document.getElementById('token').value.trim();
      var user = document.getElementById('username').value.trim();
      var pass = document.getElementById('password').value;
      var auth;
      if (token) auth = 'Bearer ' + token;
      else if (user && pass) auth = basic(user, pass);
      else return fail('Enter your device username and password, or the admin token.');
      var button = document.getElementById('login');
      button.disabled = true;
      var r = await api('GET', '/api/me', undefined, auth);
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
  function contact(uri) {
    var parts = uri.match(/[^@;]*@|;[^;]*|[^@;]+/g) || [uri];
    return h('code', null, parts.map(function (p) { return h('span', { class: 'seg', text: p }); }));
  }

  function deviceTable(ext) {
    var rows = [];
    ext.devices.forEach(function (d) {
      if (d.registrations.length === 0) {
        rows.push(h('tr', null, [
          h('td', { 'data-label': 'Device', class: 'nowrap' }, [h('code', { text: d.username })]),
          h('td', { 'data-label': 'Status' }, [h('span', { class: 'dot off', text: 'Not registered' })]),
          h('td', { 'data-label': 'Contact', class: 'contact muted', text: '\u2014' }),
          h('td', { 'data-label': 'User agent', class: 'muted', text: '\u2014' }),
          h('td', { 'data-label': 'Expires', class: 'muted', text: '\u2014' })
        ]));
        return;
      }
      d.registrations.forEach(function (r) {
        rows.push(h('tr', null, [
          h('td', { 'data-label': 'Device', class: 'nowrap' }, [h('code', { text: d.username })]),
          h('td', { 'data-label': 'Status' }, [h('span', { class: 'dot ok', text: 'Registered' })]),
          h('td', { 'data-label': 'Contact', class: 'contact', title: 'from ' + r.source }, [contact(r.contact)]),
          h('td', { 'data-label': 'User agent', text: r.userAgent || '\u2014' }),
          h('td', { 'data-label': 'Expires', class: 'nowrap', title: new Date(r.expiresAt).toLocaleString(), text: relative(r.expiresAt) })
        ]));
      });
    });
    if (rows.length === 0) {
      return h('p', { class: 'muted', text: 'No devices configured.' });
    }
    return h('table', { class: 'devices' }, [
      h('thead', null, [h('tr', null, [['Device', 'device'], ['Status', 'status'], ['Contact', 'contact'], ['User agent', 'ua'], ['Expires', 'expires']].map(function (c) {
        return h('th', { scope: 'col', class: 'col-' + c[1], text: c[0] });
      }))]),
      h('tbody', null, rows)
    ]);
  }

  function bobBadge(on) {
    return h('span', { class: on ? 'badge on' : 'badge', text: on ? 'Busy on Busy' : 'Shared use' });
  }

  function callsBadge(n) {
    return h('span', { class: n > 0 ? 'badge live' : 'badge', text: n > 0 ? plural(n, 'active call', 'active calls') : 'No active calls' });
  }

  function failPage(r) {
    if (r.status === 401) return signOut('Your session has ended. Please sign in again.');
    show(h('div', { class: 'card' }, [
      h('h1', { text: r.status === 404 ? 'Not found' : 'Something went wrong' }),
      h('p', { class: 'muted', text: r.message || 'Please try again.' }),
      session && session.me.role === 'admin' ? h('a', { class: 'button', href: '#/', text: 'All extensions' }) : null
    ]));
  }

  // ---- admin overview -----------------------------------------------------------------
  async function renderOverview() {
    var r = await api('GET', '/api/extensions');
    if (!isRoute('overview')) return;
    if (r.status !== 200) return failPage(r);
    var list = r.data;
    var devices = 0, registered = 0, calls = 0;
    list.forEach(function (e) {
      calls += e.activeCalls;
      e.devices.forEach(function (d) { devices++; if (d.registrations.length) registered++; });
    });
    var cards = list.map(function (e) {
      var href = '#/extensions/' + encodeURIComponent(e.number);
      return h('article', { class: 'card ext', 'data-extension': e.number }, [
        h('div', { class: 'ext-head' }, [
          h('a', { class: 'ext-title', href: href }, [
            h('span', { class: 'ext-number', text: e.number }),
            h('span', { class: 'ext-name', text: e.name })
          ]),
          h('div', { class: 'badges' }, [bobBadge(e.busyOnBusy), callsBadge(e.activeCalls)]),
          h('a', { class: 'button', href: href, 'aria-label': 'Settings of extension ' + e.number, text: 'Settings' })
        ]),
        deviceTable(e)
      ]);
    });
    show(h('section', null, [
      h('div', { class: 'page-head' }, [
        h('div', null, [
          h('h1', { text: 'Extensions' }),
          h('p', { class: 'subtitle', text:
            plural(list.length, 'extension', 'extensions') + ' \u00b7 ' +
            registered + ' of ' + plural(devices, 'device', 'devices') + ' registered \u00b7 ' +
            plural(calls, 'active call', 'active calls') })
        ]),
        h('button', { type: 'button', id: 'refresh', onclick: renderOverview, text: 'Refresh' })
      ]),
      cards.length ? h('div', null, cards) : h('div', { class: 'card empty', text: 'No extensions are configured.' })
    ]));
  }

  // ---- settings of one extension --------------------------------------------------------
  async function renderSettings(number) {
    var r = await api('GET', '/api/extensions/' + encodeURIComponent(number));
    if (!isRoute('settings', number)) return;
    if (r.status !== 200) return failPage(r);
    var ext = r.data;
    var saved = ext.busyOnBusy;

    var box = h('input', { type: 'checkbox', id: 'busyOnBusy', 'aria-describedby': 'bob-help', checked: saved });
    var stateText = h('span', { class: 'state badge' });
    var status = h('span', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' });
    var optOff = h('div', { class: 'option' }, [
      h('strong', { text: 'Off \u2014 shared use' }),
      'For example a service hotline: new calls keep ringing on every device while colleagues are already on calls.'
    ]);
    var optOn = h('div', { class: 'option' }, [
      h('strong', { text: 'On \u2014 one person, several devices' }),
      'While you are on a call on any of your devices, further callers hear busy instead of ringing your other devices.'
    ]);
    var save = h('button', { type: 'button', id: 'save', class: 'primary', text: 'Save' });

    function sync() {
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
      var res = await api('PATCH', '/api/extensions/' + encodeURIComponent(ext.number), { busyOnBusy: box.checked });
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

    var admin = session.me.role === 'admin';
    show(h('section', null, [
      admin ? h('a', { class: 'back', href: '#/', text: '\u2190 All extensions' }) : null,
      h('div', { class: 'page-head' }, [
        h('div', null, [
          h('h1', { text: 'Extension ' + ext.number }),
          h('p', { class: 'subtitle', text: ext.name })
        ]),
        callsBadge(ext.activeCalls)
      ]),
      h('article', { class: 'card' }, [
        h('h2', { text: 'Incoming calls' }),
        h('div', { class: 'check-row' }, [box, h('label', { for: 'busyOnBusy', text: 'Busy on Busy' }), stateText]),
        h('div', { id: 'bob-help', class: 'options' }, [optOff, optOn]),
        h('div', { class: 'actions' }, [save, status])
      ]),
      h('article', { class: 'card' }, [h('h2', { text: 'Devices' }), deviceTable(ext)])
    ]));
  }

  // ---- routing --------------------------------------------------------------------------
  var current = { name: '', number: '' };
  function isRoute(name, number) {
    return current.name === name && (number === undefined || current.number === number);
  }

  function route() {
    stopTimer();
    if (!session) return renderLogin('');
    var m = /^#\/extensions\/([^/]+)$/.exec(location.hash);
    var number = m ? decodeURIComponent(m[1]) : '';
    if (session.me.role === 'device') {
      // A device user has exactly one page: their own extension.
      if (number !== session.me.extension) {
        number = session.me.extension;
        history.replaceState(null, '', '#/extensions/' + encodeURIComponent(number));
      }
    }
    if (number) {
      current = { name: 'settings', number: number };
      renderSettings(number);
    } else {
      current = { name: 'overview', number: '' };
      renderOverview();
      timer = setInterval(function () {
        if (document.visibilityState === 'visible') renderOverview();
      }, 15000);
    }
  }

  window.addEventListener('hashchange', route);

  async function start() {
    var auth = sessionStorage.getItem(KEY);
    if (!auth) return renderLogin('');
    var r = await api('GET', '/api/me', undefined, auth);
    if (r.status === 200 && r.data) {
      session = { auth: auth, me: r.data };
      setWho();
      route();
    } else {
      sessionStorage.removeItem(KEY);
      renderLogin(r.status === 401 ? '' : (r.message || ''));
    }
  }
  start();
})();
`;

const FAVICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='8' fill='%231f5bd8'/%3E%3Ctext x='16' y='22' font-family='Arial' font-size='17' font-weight='700' text-anchor='middle' fill='white'%3Es%3C/text%3E%3C/svg%3E";

function sha256(s: string): string {
  return `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;
}

let cached: { html: string; csp: string } | undefined;

/** The page and its Content-Security-Policy (hashes of exactly the inline script and style). */
export function portalPage(): { html: string; csp: string } {
  if (cached) return cached;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sipbob · Extensions</title>
<link rel="icon" href="${FAVICON}">
<style>${CSS}</style>
</head>
<body>
<header class="topbar">
  <div class="brand"><span class="brand-mark" aria-hidden="true">s</span><span>sipbob</span><span class="brand-sub">Extensions portal</span></div>
  <div class="who" id="who" hidden></div>
</header>
<main id="app" class="container"><noscript>This portal needs JavaScript.</noscript></main>
<script>${JS}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(JS)}`,
    `style-src ${sha256(CSS)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  cached = { html, csp };
  return cached;
}
