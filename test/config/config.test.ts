import t from 'tap';
import { fileURLToPath } from 'node:url';
import { formatErrors, loadConfig, parseConfig } from '../../src/config/load.js';
import { diffExtensions, removedDevices } from '../../src/config/diff.js';
import type { Config } from '../../src/config/types.js';

const DEFAULT_FILE = fileURLToPath(new URL('../../config/sipbob.yaml', import.meta.url));

/** Joins lines so that line N of the YAML is element N-1 of the array. */
const yaml = (...lines: string[]) => lines.join('\n') + '\n';

/** Errors as [key, line, message] for exact comparison. */
function errorsOf(text: string): [string, number, string][] {
  const r = parseConfig(text, 'test.yaml', {});
  return r.errors.map((e) => [e.key, e.line, e.message]);
}

function configOf(text: string, env: NodeJS.ProcessEnv = {}): Config {
  const r = parseConfig(text, 'test.yaml', env);
  if (!r.config) throw new Error(formatErrors('test.yaml', r.errors));
  return r.config;
}

const MINIMAL = yaml('domain: pbx.example.test', 'extensions: []');

t.test('the embedded default file loads with the documented values', async (t) => {
  const r = loadConfig(DEFAULT_FILE, {});
  t.strictSame(r.errors, []);
  const c = r.config!;
  t.equal(c.domain, 'pbx.example.test');
  t.strictSame(c.listen, [
    { transport: 'udp', host: '127.0.0.1', port: 5060, url: 'udp://127.0.0.1:5060' },
    { transport: 'tcp', host: '127.0.0.1', port: 5060, url: 'tcp://127.0.0.1:5060' },
  ]);
  t.strictSame(c.http, { host: '127.0.0.1', port: 8080, adminToken: 'change-me', https: false, trustProxy: [] });
  t.strictSame(c.auth, { algorithms: ['MD5'] });
  t.strictSame(c.registrar, { minExpires: 60, maxExpires: 3600, defaultExpires: 600, natKeepalive: 0 });
  t.strictSame(c.calls, { ringTimeout: 30, maxCallDuration: 14400, keepalive: 30, keepaliveFailures: 2 });
  t.strictSame(c.storage, { path: 'data/' });
  t.strictSame(c.trunks, []);
  t.strictSame(c.log, { level: 'info' });
  t.equal(c.advertise, undefined);
  t.strictSame(c.extensions, [
    {
      number: '100',
      name: 'Service Hotline',
      busyOnBusy: false,
      ringTimeout: 20,
      declineEndsCall: false,
      devices: [
        { username: 'hotline-desk-1', password: 'secret-1' },
        { username: 'hotline-desk-2', password: 'secret-2' },
      ],
    },
    {
      number: '200',
      name: 'Anna Schmidt',
      busyOnBusy: true,
      declineEndsCall: false,
      devices: [
        { username: 'anna-desk', password: 'secret-3' },
        { username: 'anna-soft', password: 'secret-4' },
        { username: 'anna-mobile', password: 'secret-5' },
      ],
    },
  ]);
});

t.test('a minimal config gets every default', async (t) => {
  t.strictSame(configOf(MINIMAL), {
    domain: 'pbx.example.test',
    listen: [
      { transport: 'udp', host: '0.0.0.0', port: 5060, url: 'udp://0.0.0.0:5060' },
      { transport: 'tcp', host: '0.0.0.0', port: 5060, url: 'tcp://0.0.0.0:5060' },
    ],
    http: { host: '127.0.0.1', port: 8080, https: false, trustProxy: [] },
    auth: { algorithms: ['MD5'] },
    registrar: { minExpires: 60, maxExpires: 3600, defaultExpires: 600, natKeepalive: 0 },
    calls: { ringTimeout: 30, maxCallDuration: 14400, keepalive: 30, keepaliveFailures: 2 },
    security: {
      trusted: [],
      floodLimit: { requests: 300, seconds: 2, ban: 60 },
      authFailures: { max: 10, seconds: 300, ban: 900 },
    },
    storage: { path: 'data/' },
    trunks: [],
    extensions: [],
    log: { level: 'info' },
  });
});

t.test('extension and device defaults; YAML numbers are taken as written', async (t) => {
  const c = configOf(
    yaml(
      'domain: pbx.example.test',
      'extensions:',
      '  - number: 0200', //     a YAML int, kept as written
      '    devices:',
      '      - username: anna',
      '        password: 1234',
      '      - { username: bob, password: 12.50 }',
      '  - number: 300',
    ),
  );
  t.strictSame(c.extensions, [
    {
      number: '0200',
      name: '0200',
      busyOnBusy: false,
      declineEndsCall: false,
      devices: [
        { username: 'anna', password: '1234' },
        { username: 'bob', password: '12.50' },
      ],
    },
    { number: '300', name: '300', busyOnBusy: false, declineEndsCall: false, devices: [] },
  ]);
});

t.test('empty values (`key:`) mean "use the default"', async (t) => {
  const c = configOf(yaml('domain: pbx.example.test', 'trunks:', 'storage:', 'extensions: []'));
  t.strictSame(c.trunks, []);
  t.strictSame(c.storage, { path: 'data/' });
  t.strictSame(errorsOf(yaml('domain:', 'extensions: []')), [['domain', 1, 'is required']]);
});

t.test('other accepted values', async (t) => {
  const c = configOf(
    yaml(
      'domain: pbx.example.test',
      'listen: ["udp://[::1]:5060", "TCP://sip.example.test:5070"]',
      'advertise: 203.0.113.10',
      'http: { listen: "[::1]:9090" }',
      'auth: { algorithms: [SHA-256, MD5] }',
      'storage: { path: /var/lib/sipbob }',
      'trunks:',
      '  - { name: a, address: 192.0.2.10 }',
      '  - { name: b, address: "192.0.2.11:5080" }',
      '  - { name: c, address: "[2001:db8::1]:5060" }',
      '  - { name: d, address: "2001:db8::2" }',
      'log: { level: debug }',
      'extensions: []',
    ),
  );
  t.strictSame(c.listen, [
    { transport: 'udp', host: '::1', port: 5060, url: 'udp://[::1]:5060' },
    { transport: 'tcp', host: 'sip.example.test', port: 5070, url: 'TCP://sip.example.test:5070' },
  ]);
  t.equal(c.advertise, '203.0.113.10');
  t.strictSame(c.http, { host: '::1', port: 9090, https: false, trustProxy: [] });
  t.strictSame(c.auth.algorithms, ['SHA-256', 'MD5']);
  t.strictSame(c.storage, { path: '/var/lib/sipbob' });
  t.strictSame(c.trunks, [
    { name: 'a', host: '192.0.2.10' },
    { name: 'b', host: '192.0.2.11', port: 5080 },
    { name: 'c', host: '2001:db8::1', port: 5060 },
    { name: 'd', host: '2001:db8::2' },
  ]);
  t.equal(c.log.level, 'debug');
});

t.test('unknown keys name the key path and its line', async (t) => {
  t.strictSame(errorsOf(yaml('domain: pbx.example.test', 'extensions: []', 'domian: x')), [
    ['domian', 3, 'unknown key (did you mean "domain"?)'],
  ]);
  t.strictSame(
    errorsOf(
      yaml(
        'domain: pbx.example.test',
        'extensions:',
        '  - number: "100"',
        '    devcies:',
        '      - { username: a, password: b }',
      ),
    ),
    [['extensions[0].devcies', 4, 'unknown key (did you mean "devices"?)']],
  );
  t.strictSame(
    errorsOf(
      yaml(
        'domain: pbx.example.test',
        'registrar:',
        '  minExpires: 60',
        '  foo: 1',
        'extensions:',
        '  - number: "100"',
        '    devices:',
        '      - { username: a, password: b, realm: x }',
      ),
    ),
    [
      ['registrar.foo', 4, 'unknown key (expected one of: minExpires, maxExpires, defaultExpires, natKeepalive)'],
      ['extensions[0].devices[0].realm', 8, 'unknown key (expected one of: username, password)'],
    ],
  );
});

t.test('a key given twice in one mapping', async (t) => {
  t.strictSame(errorsOf(yaml('domain: a.test', 'extensions: []', 'domain: b.test')), [
    ['domain', 3, 'duplicate key (first at line 1)'],
  ]);
});

t.test('duplicate extension numbers', async (t) => {
  t.strictSame(
    errorsOf(
      yaml(
        'domain: pbx.example.test',
        'extensions:',
        '  - number: "100"',
        '  - number: "200"',
        '  - number: 100', // same number, unquoted
      ),
    ),
    [['extensions[2].number', 5, 'duplicate extension number "100" (first at line 3)']],
  );
});

t.test('duplicate usernames across extensions', async (t) => {
  const text = yaml(
    'domain: pbx.example.test',
    'extensions:',
    '  - number: "100"',
    '    devices:',
    '      - username: hotline',
    '        password: x',
    '  - number: "200"',
    '    devices:',
    '      - { username: anna-desk, password: y }',
    '      - { username: anna-soft, password: y }',
    '  - number: "300"',
    '    devices:',
    '      - { username: anna-desk, password: z }',
  );
  const r = parseConfig(text, 'config/sipbob.yaml', {});
  t.strictSame(r.errors, [{ key: 'extensions[2].devices[0].username', line: 13, message: 'duplicate username "anna-desk" (first at line 9)' }]);
  t.equal(
    formatErrors('config/sipbob.yaml', r.errors),
    'config/sipbob.yaml:13: extensions[2].devices[0].username: duplicate username "anna-desk" (first at line 9)',
  );
});

t.test('bad listen URLs and ports', async (t) => {
  t.strictSame(
    errorsOf(
      yaml(
        'domain: pbx.example.test',
        'listen:',
        '  - sctp://127.0.0.1:5061',
        '  - 127.0.0.1:5060',
        '  - udp://127.0.0.1',
        '  - udp://127.0.0.1:0',
        '  - tcp://127.0.0.1:70000',
        '  - udp://::1:5060',
        '  - udp://999.1.1.1:5060',
        '  - udp://127.0.0.1:5060',
        '  - udp://127.0.0.1:5060',
        'http:',
        '  listen: 8080',
        'extensions: []',
      ),
    ),
    [
      ['listen[0]', 3, 'transport must be udp, tcp, tls, ws or wss (got "sctp")'],
      ['listen[1]', 4, 'must be a URL such as udp://host:port (transports: udp, tcp, tls, ws or wss; got "127.0.0.1:5060")'],
      ['listen[2]', 5, 'must be host:port (got "127.0.0.1")'],
      ['listen[3]', 6, 'port must be between 1 and 65535 (got "0")'],
      ['listen[4]', 7, 'port must be between 1 and 65535 (got "70000")'],
      ['listen[5]', 8, 'must be [ipv6]:port, e.g. [::1]:5060'],
      ['listen[6]', 9, '"999.1.1.1" is not an IP address or host name'],
      ['listen[8]', 11, 'duplicate listener "udp://127.0.0.1:5060" (first at line 10)'],
      ['http.listen', 13, 'must be host:port (got "8080")'],
    ],
  );
  t.strictSame(errorsOf(yaml('domain: pbx.example.test', 'listen: []', 'extensions: []')), [['listen', 2, 'must not be empty']]);
  // A tls:// listener has no certificate without the tls section: named by the listener's line.
  t.strictSame(
    errorsOf(yaml('domain: pbx.example.test', 'listen:', '  - udp://127.0.0.1:5060', '  - tls://127.0.0.1:5061', 'extensions: []')),
    [['listen[1]', 4, 'tls://127.0.0.1:5061 needs tls.cert and tls.key (a tls:// listener)']],
  );
  const withTls = parseConfig(
    yaml('domain: pbx.example.test', 'listen:', '  - tls://127.0.0.1:5061', 'tls:', '  cert: a.pem', '  key: a.key', 'extensions: []'),
    'test.yaml',
    {},
  );
  t.strictSame(withTls.errors, []);
  t.equal(withTls.config?.listen[0]?.transport, 'tls');
  t.equal(configOf(yaml('domain: pbx.example.test', 'registrar:', '  natKeepalive: 25', 'extensions: []')).registrar.natKeepalive, 25, 'registrar.natKeepalive');
  t.equal(errorsOf(yaml('domain: pbx.example.test', 'registrar:', '  natKeepalive: -1', 'extensions: []'))[0]?.[0], 'registrar.natKeepalive', 'a bad natKeepalive names its key');
});

t.test('bad trunk addresses', async (t) => {
  t.strictSame(
    errorsOf(
      yaml(
        'domain: pbx.example.test',
        'trunks:',
        '  - { name: a, address: carrier.example.test }',
        '  - { name: b, address: "192.0.2.1:99999" }',
        '  - { name: a, address: 192.0.2.2 }',
        '  - { name: c }',
        '  - name: d',
        '    address: [2001:db8::1]',
        'extensions: []',
      ),
    ),
    [
      ['trunks[0].address', 3, '"carrier.example.test" is not an IP address'],
      ['trunks[1].address', 4, 'port must be between 1 and 65535 (got "99999")'],
      ['trunks[2].name', 5, 'duplicate trunk name "a" (first at line 3)'],
      ['trunks[3].address', 6, 'is required'],
      ['trunks[4].address', 8, 'must be a string (quote values that start with "[")'],
    ],
  );
});

t.test('bad algorithms', async (t) => {
  t.strictSame(
    errorsOf(yaml('domain: pbx.example.test', 'auth:', '  algorithms: [SHA-512, MD5, MD5]', 'extensions: []')),
    [
      ['auth.algorithms[0]', 3, 'must be one of MD5, SHA-256 (got "SHA-512")'],
      ['auth.algorithms[2]', 3, 'duplicate algorithm "MD5" (first at line 3)'],
    ],
  );
  t.strictSame(errorsOf(yaml('domain: pbx.example.test', 'auth:', '  algorithms: []', 'extensions: []')), [
    ['auth.algorithms', 3, 'must not be empty'],
  ]);
});

t.test('registrar expiry bounds', async (t) => {
  t.strictSame(
    errorsOf(yaml('domain: pbx.example.test', 'registrar:', '  minExpires: 4000', '  maxExpires: 3000', 'extensions: []')),
    [['registrar.minExpires', 3, 'minExpires (4000) must not exceed maxExpires (3000)']],
  );
  t.strictSame(
    errorsOf(yaml('domain: pbx.example.test', 'registrar:', '  maxExpires: 30', 'extensions: []')),
    [['registrar.maxExpires', 3, 'minExpires (60) must not exceed maxExpires (30)']],
    'blames the key that was written, not the defaulted one',
  );
  t.strictSame(
    errorsOf(yaml('domain: pbx.example.test', 'registrar:', '  defaultExpires: 7200', 'extensions: []')),
    [['registrar.defaultExpires', 3, 'defaultExpires (7200) must be between minExpires (60) and maxExpires (3600)']],
  );
  t.strictSame(
    errorsOf(yaml('domain: pbx.example.test', 'registrar:', '  minExpires: 0', 'calls: { ringTimeout: -5 }', 'extensions: []')),
    [
      ['registrar.minExpires', 3, 'must be at least 1'],
      ['calls.ringTimeout', 4, 'must be at least 1'],
    ],
  );
});

t.test('missing required keys', async (t) => {
  t.strictSame(errorsOf(yaml('extensions: []')), [['domain', 1, 'is required']]);
  t.strictSame(errorsOf(yaml('# sipbob', 'domain: pbx.example.test')), [['extensions', 2, 'is required']]);
  t.strictSame(
    errorsOf(yaml('domain: pbx.example.test', 'extensions:', '  - name: nobody', '    devices:', '      - password: x')),
    [
      ['extensions[0].number', 3, 'is required'],
      ['extensions[0].devices[0].username', 5, 'is required'],
    ],
  );
  t.strictSame(errorsOf(''), [['', 0, 'the config must be a YAML mapping (domain:, extensions:, ...)']]);
});

t.test('wrong types', async (t) => {
  t.strictSame(
    errorsOf(
      yaml(
        'domain: [pbx.example.test]',
        'http: 8080',
        'extensions:',
        '  - number: "10a"',
        '    busyOnBusy: yes',
        '    declineEndsCall: 1',
        '    ringTimeout: "30"',
        '    devices:',
        '      - { username: "anna desk", password: [x] }',
        '      - { username: "a@b", password: "" }',
        '  - number: "300"',
        '    devices: anna',
        '  - just-a-string',
      ),
    ),
    [
      ['domain', 1, 'must be a string (quote values that start with "[")'],
      ['http', 2, 'must be a mapping'],
      ['extensions[0].number', 4, 'must be 1 to 32 digits'],
      ['extensions[0].busyOnBusy', 5, 'must be true or false'],
      ['extensions[0].declineEndsCall', 6, 'must be true or false'],
      ['extensions[0].ringTimeout', 7, 'must be an integer'],
      ['extensions[0].devices[0].username', 9, "must not contain whitespace, '@' or ':'"],
      ['extensions[0].devices[0].password', 9, 'must be a string (quote values that start with "[")'],
      ['extensions[0].devices[1].username', 10, "must not contain whitespace, '@' or ':'"],
      ['extensions[0].devices[1].password', 10, 'must not be empty'],
      ['extensions[1].devices', 12, 'must be a list'],
      ['extensions[2]', 13, 'must be a mapping'],
    ],
  );
  t.strictSame(errorsOf(yaml('domain: pbx.example.test', 'extensions: {}')), [['extensions', 2, 'must be a list']]);
});

t.test('several kinds of errors are reported at once, in line order', async (t) => {
  const text = yaml(
    'domain: pbx.example.test',
    'listen: [udp://0.0.0.0:0]',
    'log: { level: loud }',
    'extensions:',
    '  - number: "100"',
    '    devices: [{ username: a, password: x }]',
    '  - number: "100"',
    '    devices: [{ username: a, password: y }]',
    'colour: blue',
  );
  t.strictSame(errorsOf(text), [
    ['listen[0]', 2, 'port must be between 1 and 65535 (got "0")'],
    ['log.level', 3, 'must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'],
    ['extensions[1].number', 7, 'duplicate extension number "100" (first at line 5)'],
    ['extensions[1].devices[0].username', 8, 'duplicate username "a" (first at line 6)'],
    [
      'colour',
      9,
      'unknown key (expected one of: domain, listen, advertise, tls, http, auth, registrar, calls, security, storage, cluster, trunks, extensions, log)',
    ],
  ]);
});

t.test('YAML syntax errors carry their line', async (t) => {
  const r = parseConfig(yaml('domain: pbx.example.test', 'extensions: [', 'oops: ]'), 'test.yaml', {});
  t.ok(r.errors.length >= 1);
  t.equal(r.errors[0]!.key, '');
  t.equal(r.errors[0]!.line, 3);
});

t.test('admin token from env SIPBOB_ADMIN_TOKEN', async (t) => {
  t.equal(configOf(MINIMAL, { SIPBOB_ADMIN_TOKEN: 's3cret' }).http.adminToken, 's3cret', 'fills in when absent');
  const withToken = yaml('domain: pbx.example.test', 'http: { adminToken: change-me }', 'extensions: []');
  t.equal(configOf(withToken, { SIPBOB_ADMIN_TOKEN: 's3cret' }).http.adminToken, 's3cret', 'env wins over the file');
  t.equal(configOf(withToken, { SIPBOB_ADMIN_TOKEN: '' }).http.adminToken, 'change-me', 'empty env is ignored');
  t.equal(configOf(MINIMAL, {}).http.adminToken, undefined);
});

t.test('loadConfig reports an unreadable file as one error', async (t) => {
  const r = loadConfig('/nonexistent/sipbob.yaml', {});
  t.equal(r.config, undefined);
  t.equal(r.errors.length, 1);
  t.equal(r.errors[0]!.key, '');
  t.equal(r.errors[0]!.line, 0);
  t.match(r.errors[0]!.message, /^cannot read config: ENOENT/);
  t.match(formatErrors('/nonexistent/sipbob.yaml', r.errors), /^\/nonexistent\/sipbob\.yaml: cannot read config: ENOENT/);
});

t.test('diff for SIGHUP reload', async (t) => {
  const before = configOf(
    yaml(
      'domain: pbx.example.test',
      'extensions:',
      '  - number: "100"',
      '    devices: [{ username: h1, password: a }, { username: h2, password: b }]',
      '  - number: "200"',
      '    busyOnBusy: true',
      '    devices: [{ username: anna-desk, password: c }, { username: anna-soft, password: d }]',
      '  - number: "300"',
      '    devices: [{ username: old, password: e }, { username: moved, password: f }]',
    ),
  );
  const after = configOf(
    yaml(
      'domain: pbx.example.test',
      'extensions:',
      '  - number: "100"', // same devices, other order: unchanged
      '    devices: [{ username: h2, password: b }, { username: h1, password: a }]',
      '  - number: "200"', // busyOnBusy changed, a device removed
      '    devices: [{ username: anna-desk, password: c }]',
      '  - number: "400"', // new; takes over a device of 300
      '    devices: [{ username: moved, password: f }]',
    ),
  );
  t.strictSame(diffExtensions(before, after), { added: ['400'], removed: ['300'], changed: ['200'] });
  t.strictSame(removedDevices(before, after), ['anna-soft', 'old']);
  t.strictSame(diffExtensions(before, before), { added: [], removed: [], changed: [] });
  t.strictSame(removedDevices(before, before), []);

  const passwordChanged = structuredClone(before);
  passwordChanged.extensions[0]!.devices[1]!.password = 'new';
  t.strictSame(diffExtensions(before, passwordChanged).changed, ['100'], 'a new password is a change');
});

t.test('storage.redis and cluster: defaults, and the errors name key and line', async (t) => {
  const parse = (yaml: string) => parseConfig(yaml, 'x.yaml', {});
  const base = 'domain: pbx.example.test\nlisten: ["udp://127.0.0.11:5060"]\n';
  const ok = parse(`${base}storage:\n  redis: "redis://127.0.0.1:6379/0"\nextensions: []\n`);
  t.strictSame(ok.errors, []);
  t.equal(ok.config?.storage.redis, 'redis://127.0.0.1:6379/0');
  t.equal(ok.config?.storage.path, undefined, 'Redis replaces the embedded store');
  t.strictSame(ok.config?.cluster?.address, { host: '127.0.0.11', port: 5060 }, 'address: the first UDP listener');
  t.ok(ok.config?.cluster?.instance, 'instance: the host name by default');

  const named = parse(`${base}storage: { redis: "redis://r:6379" }\ncluster:\n  instance: sip-a\n  address: 10.0.0.11:5070\nextensions: []\n`);
  t.strictSame(named.config?.cluster, { instance: 'sip-a', address: { host: '10.0.0.11', port: 5070 } });

  t.match(parse('domain: d\nstorage:\n  redis: "http://x"\nextensions: []\n').errors, [{ key: 'storage.redis', line: 3, message: /redis:\/\// }]);
  t.match(parse('domain: d\nstorage:\n  path: data/\n  redis: "redis://x:1"\nextensions: []\n').errors, [{ key: 'storage.redis', line: 4, message: /exclude/ }]);
  t.match(parse('domain: d\ncluster:\n  instance: a\nextensions: []\n').errors, [{ key: 'cluster', line: 2, message: /storage.redis/ }]);
  t.match(parse('domain: d\nstorage: { redis: "redis://x:1" }\ncluster:\n  instance: "a b"\nextensions: []\n').errors, [{ key: 'cluster.instance', line: 4 }]);
  t.match(parse('domain: d\nlisten: ["udp://0.0.0.0:5060"]\nstorage: { redis: "redis://x:1" }\nextensions: []\n').errors, [{ key: 'cluster.address' }]);
  t.equal(parse('domain: d\nlisten: ["udp://0.0.0.0:5060"]\nadvertise: 192.0.2.1\nstorage: { redis: "redis://x:1" }\nextensions: []\n').config?.cluster?.address.host, '192.0.2.1');
  t.match(parse('domain: d\nauth:\n  nonceSecret: short\nextensions: []\n').errors, [{ key: 'auth.nonceSecret', line: 3 }]);
  t.equal(parse('domain: d\nextensions: []\n').config?.cluster, undefined, 'no cluster without Redis');
});

t.test('the config loaded in a worker (run path) equals the one loaded in place', async (t) => {
  // dist/: the worker runs the built load-thread.js (npm test builds first).
  // A path held in a variable: the type checker does not look for the built file's declarations.
  const built = '../../dist/src/config/load-isolated.js';
  const isolated = (await import(built)) as typeof import('../../src/config/load-isolated.js');
  const file = fileURLToPath(new URL('../../config/sipbob.yaml', import.meta.url));
  const inPlace = loadConfig(file, {});
  const viaWorker = await isolated.loadConfigIsolated(file, {});
  t.same(viaWorker, inPlace, 'reshaping after the structured clone drops nothing');
  t.ok(inPlace.config?.extensions.some((e) => e.ringTimeout !== undefined), 'the example has an extension with its own ringTimeout');
  t.ok(inPlace.config?.extensions.some((e) => e.ringTimeout === undefined), 'and one without');
});

t.test('security, tls, http.https and http.trustProxy: values, defaults and errors with key and line', async (t) => {
  const c = configOf(
    yaml(
      'domain: pbx.example.test',
      'tls: { cert: /etc/sipbob/fullchain.pem, key: /etc/sipbob/privkey.pem }',
      'http:',
      '  https: true',
      '  trustProxy: [10.0.0.1, "2001:db8::/32"]',
      'security:',
      '  trusted: [192.0.2.0/24]',
      '  floodLimit: { requests: 50 }',
      '  authFailures: { max: 3, ban: 30 }',
      'extensions: []',
    ),
  );
  t.strictSame(c.tls, { cert: '/etc/sipbob/fullchain.pem', key: '/etc/sipbob/privkey.pem' });
  t.strictSame(c.http.https, true);
  t.strictSame(c.http.trustProxy, [
    { address: '10.0.0.1', prefix: 32, text: '10.0.0.1' },
    { address: '2001:db8::', prefix: 32, text: '2001:db8::/32' },
  ]);
  t.strictSame(c.security, {
    trusted: [{ address: '192.0.2.0', prefix: 24, text: '192.0.2.0/24' }],
    floodLimit: { requests: 50, seconds: 2, ban: 60 },
    authFailures: { max: 3, seconds: 300, ban: 30 },
  });

  const bad = parseConfig(
    yaml(
      'domain: pbx.example.test',
      'http:',
      '  https: true',
      'security:',
      '  trusted: [10.0.0.0/33, nonsense]',
      '  floodLimit: { requests: 0 }',
      'extensions: []',
    ),
    'x.yaml',
    {},
  );
  t.match(bad.errors, [
    { key: 'security.trusted[0]', line: 5, message: /prefix length must be between 0 and 32/ },
    { key: 'security.trusted[1]', line: 5, message: /not an IP address/ },
    { key: 'security.floodLimit.requests', line: 6, message: /at least 1/ },
  ]);
  const noTls = parseConfig(yaml('domain: pbx.example.test', 'http:', '  https: true', 'extensions: []'), 'x.yaml', {});
  t.match(noTls.errors, [{ key: 'http.https', line: 2, message: /needs tls.cert and tls.key/ }]);
  const halfTls = parseConfig(yaml('domain: pbx.example.test', 'tls:', '  cert: a.pem', 'extensions: []'), 'x.yaml', {});
  t.match(halfTls.errors, [{ key: 'tls.key', message: /is required/ }]);
  const wsOk = parseConfig(yaml('domain: pbx.example.test', 'listen:', '  - ws://127.0.0.1:8088', '  - wss://[::1]:8089', 'tls: { cert: a.pem, key: b.pem }', 'extensions: []'), 'x.yaml', {});
  t.strictSame(wsOk.errors, []);
  t.match(wsOk.config?.listen, [{ transport: 'ws', host: '127.0.0.1', port: 8088 }, { transport: 'wss', host: '::1', port: 8089 }]);
  const wssNoTls = parseConfig(yaml('domain: pbx.example.test', 'listen:', '  - udp://127.0.0.1:5060', '  - wss://127.0.0.1:8089', 'extensions: []'), 'x.yaml', {});
  t.match(wssNoTls.errors, [{ key: 'listen[1]', line: 4, message: /wss:\/\/127\.0\.0\.1:8089 needs tls.cert and tls.key/ }]);
});
