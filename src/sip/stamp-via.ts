import type { Via } from './headers.js';

/**
 * RFC 3581 §4 and RFC 3261 §18.2.1: the top Via value with `received` (the source address
 * differs from the sent-by host) and `rport` (the client asked for it, over UDP) filled in, or
 * undefined when nothing changes.
 */
export function stampVia(value: string, via: Via, sourceAddress: string, sourcePort: number, datagram: boolean): string | undefined {
  const needReceived = via.host !== sourceAddress;
  const needRport = via.rport === '' && datagram;
  if (!needReceived && !needRport) return undefined;
  let v = value;
  if (needRport) {
    const at = emptyRport(v);
    if (at !== undefined) v = `${v.slice(0, at[0])};rport=${sourcePort}${v.slice(at[1])}`;
  }
  if (needReceived && via.received === undefined) v += `;received=${sourceAddress}`;
  return v;
}

/** [start, end) of the first ";rport" parameter without a value (spaces after ";" allowed). */
function emptyRport(v: string): [number, number] | undefined {
  for (let i = v.indexOf(';'); i !== -1; i = v.indexOf(';', i + 1)) {
    let j = i + 1;
    while (j < v.length && isSpace(v.charCodeAt(j))) j++;
    if (v.length - j < 5 || v.slice(j, j + 5).toLowerCase() !== 'rport') continue;
    const k = j + 5;
    if (k === v.length || v.charCodeAt(k) === 59 || isSpace(v.charCodeAt(k))) return [i, k];
  }
  return undefined;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}
