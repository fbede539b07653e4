/** Decimal numbers in headers (sip/numbers.ts): digits only, leading zeros, bounds, saturation. */
import t from 'tap';
import { parseDecimal, parseDecimalString } from '../../src/sip/numbers.js';

const inBuf = (s: string, max: number, maxDigits?: number): number => {
  // Surrounded by other bytes, to check the bounds are honoured.
  const b = Buffer.from(`x:${s};`);
  return maxDigits === undefined ? parseDecimal(b, 2, 2 + s.length, max) : parseDecimal(b, 2, 2 + s.length, max, maxDigits);
};

t.test('parseDecimal over bytes', async (t) => {
  t.equal(inBuf('0', 100), 0);
  t.equal(inBuf('42', 100), 42);
  t.equal(inBuf('0068', 255), 68, 'leading zeros');
  t.equal(inBuf('100', 100), 100, 'max itself');
  t.equal(inBuf('101', 100), -1, 'above max');
  t.equal(inBuf('', 100), -1, 'empty');
  t.equal(inBuf('-1', 100), -1, 'no sign');
  t.equal(inBuf('+1', 100), -1);
  t.equal(inBuf('1 ', 100), -1, 'no spaces');
  t.equal(inBuf('1a', 100), -1);
  t.equal(inBuf('１', 100), -1, 'no fullwidth digits');
  t.equal(inBuf('/', 100), -1, 'the bytes around the digits are not digits');
  t.equal(inBuf(':', 100), -1);
  t.equal(inBuf('65535', 65535), 65535);
  t.equal(inBuf('00000000001', 65535), -1, 'more than 10 digits by default');
  t.equal(inBuf('0000000001', 65535), 1, 'ten digits');
  t.equal(inBuf('123', 1000, 2), -1, 'maxDigits');
  t.equal(inBuf('12', 1000, 2), 12);
  t.equal(parseDecimal(Buffer.from('12345'), 1, 3, 100), 23, 'only [s, e)');
  t.equal(parseDecimal(Buffer.from('12345'), 3, 3, 100), -1, 'empty range');
  t.equal(parseDecimal(Buffer.from('12345'), 4, 3, 100), -1, 'reversed range');
});

t.test('parseDecimalString', async (t) => {
  t.equal(parseDecimalString('70', 255), 70);
  t.equal(parseDecimalString('0068', 255), 68);
  t.equal(parseDecimalString('255', 255), 255);
  t.equal(parseDecimalString('256', 255), -1);
  t.equal(parseDecimalString('256', 255, 16, true), 255, 'saturate: above max is max');
  t.equal(parseDecimalString('99999999999', 4294967295, 16, true), 4294967295, 'delta-seconds beyond 2^32-1 (§20.19)');
  t.equal(parseDecimalString('', 255), -1);
  t.equal(parseDecimalString('', 255, 16, true), -1, 'empty is never saturated');
  t.equal(parseDecimalString('1x', 255, 16, true), -1, 'garbage is never saturated');
  t.equal(parseDecimalString(' 1', 255), -1);
  t.equal(parseDecimalString('1.0', 255), -1);
  t.equal(parseDecimalString('-0', 255), -1);
  t.equal(parseDecimalString('0'.repeat(16) , 255), 0, '16 digits by default');
  t.equal(parseDecimalString('0'.repeat(17), 255), -1, 'then too long');
  t.equal(parseDecimalString('1234', 10_000, 3), -1, 'maxDigits');
  t.equal(parseDecimalString('٣', 255), -1, 'no other scripts\' digits');
  const wrong: number[] = [];
  for (let n = 0; n <= 300; n++) if (parseDecimalString(String(n), 255) !== (n <= 255 ? n : -1)) wrong.push(n);
  t.same(wrong, [], '0..300 against max 255');
});
