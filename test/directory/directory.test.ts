import t from 'tap';
import type { Config } from '../../src/config/types.js';
import { Directory } from '../../src/directory/directory.js';
import type { DirectoryEvent } from '../../src/directory/setting.js';

const config = {
  extensions: [{ number: '200', name: 'Anna', busyOnBusy: true, declineEndsCall: false, devices: [{ username: 'anna', password: 'pw' }] }],
} as unknown as Config;

t.test('a changed setting is announced; the YAML value until then', async (t) => {
  const d = new Directory(config);
  const seen: DirectoryEvent[] = [];
  d.events.add((e) => seen.push(e));
  t.equal(d.busyOnBusy('200'), true, 'from the YAML');
  t.equal(d.setBusyOnBusy('200', false), true);
  t.equal(d.busyOnBusy('200'), false);
  t.equal(d.setBusyOnBusy('999', true), false, 'no such extension');
  t.same(seen, [{ type: 'setting-changed', extension: '200', setting: { busyOnBusy: false } }]);
  d.load(config); // SIGHUP: the override stays
  t.equal(d.busyOnBusy('200'), false);
  t.equal(d.device('anna')?.extension, '200');
});

t.test('a restored setting wins over the YAML and is not announced', async (t) => {
  const d = new Directory(config);
  let events = 0;
  d.events.add(() => events++);
  d.restore('200', { busyOnBusy: false });
  t.equal(d.busyOnBusy('200'), false);
  t.equal(events, 0);
});
