/**
 * SIP URI (RFC 3261 §19.1) and the parameter lists shared by URIs and header fields.
 * Hand-written scanners: linear in the input, never throw.
 */

export interface SipUri {
  scheme: string; // lower case: "sip", "sips", "tel"...
  user: string; // may be "" (still %-escaped as received)
  host: string; // lower case, IPv6 without brackets
  port: number; // 0 when absent
  /** ";a=b;lr" as received, including the leading ';', or "". */
  params: string;
}

/** Parse "sip:user:pw@host:port;params?headers". Returns undefined when it is not one. */
export function parseUri(s: string): SipUri | undefined {
  const colon = s.indexOf(':');
  if (colon <= 0) return undefined;
  const scheme = s.slice(0, colon).toLowerCase();
  if (scheme !== 'sip' && scheme !== 'sips') {
    // Other schemes (tel, urn...) are carried but not routed on.
    return { scheme, user: s.slice(colon + 1), host: '', port: 0, params: '' };
  }
  let rest = s.slice(colon + 1);
  // userinfo ends at the only unescaped '@' a SIP URI can hold (neither params nor headers
  // may contain one). The user part may itself contain ';' (RFC 4475 semiuri) and '?'
  // (RFC 4475 intmeth), so find '@' before cutting off the headers at '?'.
  const at = rest.indexOf('@');
  let user = '';
  if (at !== -1) {
    user = rest.slice(0, at);
    const pw = user.indexOf(':');
    if (pw !== -1) user = user.slice(0, pw);
    rest = rest.slice(at + 1);
  }
  const q = rest.indexOf('?');
  if (q !== -1) rest = rest.slice(0, q);
  let host: string;
  let i: number;
  if (rest.charCodeAt(0) === 91 /* [ */) {
    const close = rest.indexOf(']');
    if (close === -1) return undefined;
    host = rest.slice(1, close).toLowerCase();
    i = close + 1;
  } else {
    i = 0;
    while (i < rest.length) {
      const c = rest.charCodeAt(i);
      if (c === 58 || c === 59) break; // ':' or ';'
      i++;
    }
    host = rest.slice(0, i).toLowerCase();
  }
  if (host === '' || !isHostChars(host)) return undefined;
  let port = 0;
  if (rest.charCodeAt(i) === 58) {
    i++;
    const ps = i;
    while (i < rest.length && rest.charCodeAt(i) >= 48 && rest.charCodeAt(i) <= 57) i++;
    if (i === ps || i - ps > 5) return undefined;
    port = Number(rest.slice(ps, i));
    if (port < 1 || port > 65535) return undefined;
  }
  if (i < rest.length && rest.charCodeAt(i) !== 59) return undefined;
  return { scheme, user, host, port, params: rest.slice(i) };
}

function isHostChars(h: string): boolean {
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const ok = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 58 || c === 95;
    if (!ok) return false;
  }
  return true;
}

/**
 * Value of a ";name=value" parameter in a parameter string (case-insensitive name).
 * Returns "" for a flag parameter without value and undefined when absent.
 */
export function getParam(params: string, name: string): string | undefined {
  const n = name.length;
  const lower = name.toLowerCase();
  let i = params.indexOf(';');
  while (i !== -1) {
    let s = i + 1;
    while (params.charCodeAt(s) === 32 || params.charCodeAt(s) === 9) s++;
    // Compared in place: no string per parameter (a Via may carry thousands of them).
    if (params.length >= s + n && equalsLowerAt(params, s, lower)) {
      let j = s + n;
      while (params.charCodeAt(j) === 32 || params.charCodeAt(j) === 9) j++;
      const c = params.charCodeAt(j);
      if (j >= params.length || c === 59) return '';
      if (c === 61 /* = */) {
        j++;
        while (params.charCodeAt(j) === 32 || params.charCodeAt(j) === 9) j++;
        if (params.charCodeAt(j) === 34) {
          const close = params.indexOf('"', j + 1);
          return params.slice(j + 1, close === -1 ? params.length : close);
        }
        const end = params.indexOf(';', j);
        return params.slice(j, end === -1 ? params.length : end).trim();
      }
    }
    i = params.indexOf(';', i + 1);
  }
  return undefined;
}

/** params[s, s + lower.length) equals lower, ASCII case-insensitively. */
function equalsLowerAt(params: string, s: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) {
    let c = params.charCodeAt(s + k);
    if (c >= 65 && c <= 90) c |= 32;
    if (c !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** host:port of a URI for comparisons and destinations, IPv6 in brackets. */
export function hostPort(host: string, port: number): string {
  const h = host.indexOf(':') !== -1 ? `[${host}]` : host;
  return port ? `${h}:${port}` : h;
}

/** Unescape %XX in a user part (RFC 3261 §19.1.2); invalid escapes are left as they are. */
export function unescapeUser(user: string): string {
  if (user.indexOf('%') === -1) return user;
  try {
    return decodeURIComponent(user);
  } catch {
    return user;
  }
}
