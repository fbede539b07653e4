import t from 'tap';
import { Listeners } from '../../src/lib/events.js';

t.test('listeners hear each event in the order added; the returned function unsubscribes', async (t) => {
  const l = new Listeners<{ n: number }>();
  const heard: string[] = [];
  l.emit({ n: 0 }); // nobody listening: nothing happens
  const offA = l.add((e) => heard.push(`a${e.n}`));
  l.add((e) => heard.push(`b${e.n}`));
  t.equal(l.size, 2);
  l.emit({ n: 1 });
  offA();
  l.emit({ n: 2 });
  t.same(heard, ['a1', 'b1', 'b2']);
  t.equal(l.size, 1);
});

t.test('a listener removed during emit still hears that event, not the next', async (t) => {
  const l = new Listeners<number>();
  const heard: string[] = [];
  let offB = (): void => {};
  l.add((n) => {
    heard.push(`a${n}`);
    offB();
  });
  offB = l.add((n) => heard.push(`b${n}`));
  l.emit(1);
  l.emit(2);
  t.same(heard, ['a1', 'b1', 'a2']);
});
