import t from 'tap';
import { chooseBest, upstreamStatus } from '../../src/proxy/best-response.js';

t.test('§16.7 choice', async (t) => {
  t.equal(chooseBest([486, 603, 480]), 1, '6xx wins');
  t.equal(chooseBest([500, 486]), 1, 'lowest class');
  t.equal(chooseBest([480, 486]), 1, 'busy preferred over unavailable');
  t.equal(chooseBest([408, 480]), 1, 'timeout is least informative');
  t.equal(chooseBest([486, 407]), 1, 'auth challenge preferred');
  t.equal(chooseBest([]), -1);
  t.equal(upstreamStatus(503), 500);
  t.equal(upstreamStatus(486), 486);
});
