import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ownBuffer, ownString, StringPool } from '../../src/lib/own.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap bytes still used by 2,000 substrings cut out of 2,000 different 20 KB parents. */
function retained(keep: (s: string) => string): number {
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const parent = `Digest username="u${i}", nonce="${'n'.repeat(20_000)}", uri="sip:200@pbx.example.com"`;
    const at = parent.indexOf('sip:');
    kept.push(keep(parent.slice(at, at + 23)));
  }
  gc();
  const used = process.memoryUsage().heapUsed - before;
  t.equal(kept[1999], 'sip:200@pbx.example.com');
  return used;
}

t.test('an owned substring does not keep its parent alive', async (t) => {
  const sliced = retained((s) => s);
  const owned = retained(ownString);
  t.ok(sliced > 30e6, `a plain slice pins its 20 KB parent (${Math.round(sliced / 1e6)} MB for 2,000)`);
  t.ok(owned < 2e6, `owned copies keep only themselves (${Math.round(owned / 1e3)} kB for 2,000)`);
});

t.test('ownString keeps the value', async (t) => {
  for (const s of ['', 'short', 'exactly13char', 'sip:anna@127.0.0.2:5062;transport=udp', 'ü€ unicode survives']) {
    t.equal(ownString(s), s);
  }
});

t.test('StringPool: one copy per value, bounded', async (t) => {
  const pool = new StringPool(3);
  t.equal(pool.intern('Yealink SIP-T54W 96.86.0.70'), 'Yealink SIP-T54W 96.86.0.70');
  pool.intern('Yealink SIP-T54W 96.86.0.70');
  t.equal(pool.size, 1, 'a repeated value is stored once');
  for (let i = 0; i < 10; i++) t.equal(pool.intern(`flood ${i}`), `flood ${i}`, 'values past the bound still come back');
  t.equal(pool.size, 3, 'but the pool does not grow past its bound');
});

t.test('ownBuffer: a pool slice gets memory of its own, an own buffer is kept as it is', async (t) => {
  const pooled = Buffer.from('SIP/2.0 200 OK\r\n\r\n');
  t.ok(pooled.buffer.byteLength > pooled.length, 'Buffer.from of a short string is a slice of the shared pool');
  const own = ownBuffer(pooled);
  t.not(own, pooled);
  t.equal(own.buffer.byteLength, own.length, 'the copy has an ArrayBuffer of its own size');
  t.equal(own.toString(), 'SIP/2.0 200 OK\r\n\r\n');
  t.equal(ownBuffer(own), own, 'owning twice copies nothing');
});
