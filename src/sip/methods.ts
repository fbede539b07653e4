/**
 * Method names as shared constant strings. A method sliced out of each message is a fresh
 * string: every comparison with 'INVITE' then compares characters, and every Map keyed by it
 * (metrics, transaction keys) hashes it again. The methods of RFC 3261 and its common
 * extensions resolve to one constant each, whose hash V8 computed once.
 */
export const KNOWN_METHODS: readonly string[] = [
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'REGISTER', 'OPTIONS', 'INFO', 'UPDATE', 'PRACK',
  'SUBSCRIBE', 'NOTIFY', 'REFER', 'MESSAGE', 'PUBLISH',
];

/** Candidates by length (all known methods are 3 to 9 characters long). */
const BY_LENGTH: (string[] | undefined)[] = [];
for (const m of KNOWN_METHODS) (BY_LENGTH[m.length] ??= []).push(m);

/** The shared constant for s[start, end) when it is a known method (case-sensitive, §7.1). */
export function knownMethod(s: string, start: number, end: number): string | undefined {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return undefined;
  for (let k = 0; k < candidates.length; k++) {
    const m = candidates[k]!;
    let i = 0;
    while (i < m.length && m.charCodeAt(i) === s.charCodeAt(start + i)) i++;
    if (i === m.length) return m;
  }
  return undefined;
}
