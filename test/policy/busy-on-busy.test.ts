import t from 'tap';
import { decideNewCall } from '../../src/policy/busy-on-busy.js';

t.test('interface.md table', async (t) => {
  t.equal(decideNewCall(false, 0), 'ring', 'shared use, idle: rings');
  t.equal(decideNewCall(false, 3), 'ring', 'shared use, calls up: still rings');
  t.equal(decideNewCall(true, 0), 'ring', 'busy on busy, idle: rings');
  t.equal(decideNewCall(true, 1), 'busy', 'busy on busy, a call is up: 486');
});
