import t from 'tap';
import { chooseBest, upstreamStatus } from '../../src/proxy/best-response.js';

/** The status chooseBest picks. */
const best = (codes: number[]): number => codes[chooseBest(codes)]!;

t.test('empty and single', async (t) => {
  t.equal(chooseBest([]), -1);
  t.equal(chooseBest([486]), 0);
});

t.test('§16.7 step 6: any 6xx wins', async (t) => {
  t.equal(best([486, 603, 302]), 603);
  t.equal(best([401, 600]), 600);
  t.equal(best([600, 603]), 600, 'the first 6xx of several');
  t.equal(best([603, 600]), 603);
  t.equal(best([408, 500, 604]), 604);
});

t.test('otherwise the lowest class', async (t) => {
  t.equal(best([500, 486, 302]), 302);
  t.equal(best([503, 404]), 404);
  t.equal(best([500, 502]), 500, 'same class: arrival order');
  t.equal(best([502, 500]), 502);
  t.equal(best([408, 503]), 408, '4xx beats 5xx even for a timeout');
});

t.test('4xx preference: 401/407/415/420/484 > 486 > 480 > other > 408', async (t) => {
  for (const auth of [401, 407, 415, 420, 484]) {
    t.equal(best([486, auth]), auth, `${auth} beats 486`);
    t.equal(best([auth, 486]), auth);
    t.equal(best([408, 480, 404, auth]), auth, `${auth} beats everything else`);
  }
  t.equal(best([480, 486]), 486, 'busy beats unavailable');
  t.equal(best([486, 480]), 486);
  t.equal(best([404, 480]), 480, 'unavailable beats other 4xx');
  t.equal(best([403, 404]), 403, 'other 4xx: arrival order');
  t.equal(best([408, 404]), 404, 'timeout is the least informative 4xx');
  t.equal(best([408, 408]), 408);
  t.equal(best([407, 401]), 407, 'first of the retry-able ones');
  t.equal(best([408, 480, 486, 404]), 486);
  // Decline codes on a ring group: 603 still wins as 6xx (declineEndsCall aside).
  t.equal(best([480, 486, 603]), 603);
});

t.test('index, not status, is returned (ties by arrival order)', async (t) => {
  t.equal(chooseBest([486, 486, 486]), 0);
  t.equal(chooseBest([404, 486, 480]), 1);
});

t.test('upstreamStatus: 503 is never forwarded as such', async (t) => {
  t.equal(upstreamStatus(503), 500);
  for (const c of [500, 486, 408, 603, 404]) t.equal(upstreamStatus(c), c);
  // A branch that answered 503 alone: the caller sees 500.
  t.equal(upstreamStatus(best([503])), 500);
  t.equal(upstreamStatus(best([503, 502])), 500);
});
