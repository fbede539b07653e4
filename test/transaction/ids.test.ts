/** LocalIds: the To tags of stateless answers (same for a retransmission) and telling our tags apart. */
import t from 'tap';
import { LocalIds } from '../../src/transaction/ids.js';

t.test('a stateless tag depends on the transaction key only, and is recognisably ours', async (t) => {
  const ids = new LocalIds();
  const key = 'z9hG4bK-abc\n192.0.2.10:5060\nINVITE';
  const a = ids.statelessTag(key);
  t.equal(ids.statelessTag(key), a, 'a retransmission (same key) gets the same tag (RFC 3261 §8.2.7)');
  t.not(ids.statelessTag(key.replace('abc', 'abd')), a, 'another request, another tag');
  t.match(a, /^[0-9a-z]+$/, 'a token');
  t.ok(ids.isOurTag(a), 'ours');
  t.ok(ids.isOurTag(ids.tag()), 'stateful tags are ours too');
  t.notOk(ids.isOurTag('as7f8e9d'), 'a phone\'s tag is not');
  t.notOk(ids.isOurTag(''), 'no tag is not');
  t.notOk(new LocalIds().isOurTag(a), 'another process\'s tag is not');
});
