/** Character classes of RFC 3261 §25.1, as charCode tests (no regular expressions). */

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"), by ASCII code. */
const TOKEN = new Uint8Array(128);
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;
for (const c of "-.!%*_+`'~") TOKEN[c.charCodeAt(0)] = 1;

/**
 * One table load instead of up to thirteen comparisons: every header name, Via and URI
 * parameter byte passes here.
 */
export function isTokenCharCode(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}
