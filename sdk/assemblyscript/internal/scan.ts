/**
 * A small scanner for the top level of a JSON object: finds each member's value as raw text
 * without building anything else. The invocation envelope is read with it — a generated
 * json-as deserializer for a 14-field class costs ~20 KB of code and runs on every call.
 */

/** Where a JSON value at `i` ends (exclusive), or -1 when malformed. */
export function valueEnd(s: string, i: i32): i32 {
  const n = s.length;
  if (i >= n) return -1;
  const c = s.charCodeAt(i);
  if (c == 34 /* " */) {
    for (let j = i + 1; j < n; j++) {
      const d = s.charCodeAt(j);
      if (d == 92 /* \ */) j++;
      else if (d == 34) return j + 1;
    }
    return -1;
  }
  if (c == 123 /* { */ || c == 91 /* [ */) {
    let depth = 0;
    for (let j = i; j < n; j++) {
      const d = s.charCodeAt(j);
      if (d == 34) {
        j = valueEnd(s, j);
        if (j < 0) return -1;
        j--;
      } else if (d == 123 || d == 91) {
        depth++;
      } else if (d == 125 || d == 93) {
        depth--;
        if (depth == 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  while (j < n) {
    const d = s.charCodeAt(j);
    if (d == 44 /* , */ || d == 125 || d == 93 || d == 32 || d == 10 || d == 13 || d == 9) break;
    j++;
  }
  return j > i ? j : -1;
}

function skipSpace(s: string, i: i32): i32 {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c != 32 && c != 10 && c != 13 && c != 9) break;
    i++;
  }
  return i;
}

/** The top-level members of the JSON object `s`: keys (decoded) and raw value texts. */
export class ObjectScan {
  keys: string[] = [];
  values: string[] = [];
  /** False when `s` was not a well-formed object at the top level. */
  ok: bool = true;

  constructor(s: string) {
    this.ok = this.scan(s);
  }

  private scan(s: string): bool {
    let i = skipSpace(s, 0);
    if (i >= s.length || s.charCodeAt(i) != 123) return false;
    i = skipSpace(s, i + 1);
    if (i < s.length && s.charCodeAt(i) == 125) return true;
    while (i < s.length) {
      const keyEnd = valueEnd(s, i);
      if (keyEnd < 0 || s.charCodeAt(i) != 34) break;
      const key = unquote(s.substring(i, keyEnd));
      i = skipSpace(s, keyEnd);
      if (i >= s.length || s.charCodeAt(i) != 58 /* : */) break;
      i = skipSpace(s, i + 1);
      const end = valueEnd(s, i);
      if (end < 0) break;
      this.keys.push(key);
      this.values.push(s.substring(i, end));
      i = skipSpace(s, end);
      if (i < s.length && s.charCodeAt(i) == 44) {
        i = skipSpace(s, i + 1);
        continue;
      }
      if (i < s.length && s.charCodeAt(i) == 125) return true;
      break;
    }
    return false;
  }

  /** The raw value text of `key`, or null. */
  raw(key: string): string | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.values[i];
    return null;
  }

  /** The string value of `key` (decoded), or null when absent or not a string. */
  str(key: string): string | null {
    const raw = this.raw(key);
    if (raw === null || raw.length < 2 || raw.charCodeAt(0) != 34) return null;
    return unquote(raw);
  }

  /** The number value of `key` (integers only, as f64), or 0. */
  num(key: string): f64 {
    const raw = this.raw(key);
    if (raw === null) return 0;
    let v: f64 = 0;
    let neg = false;
    for (let i = 0; i < raw.length; i++) {
      const c = raw.charCodeAt(i);
      if (i == 0 && c == 45) neg = true;
      else if (c >= 48 && c <= 57) v = v * 10 + <f64>(c - 48);
      else break;
    }
    return neg ? -v : v;
  }

  /** True when `key` is the literal `true`. */
  bool(key: string): bool {
    const raw = this.raw(key);
    return raw !== null && raw == "true";
  }
}

function hexDigit(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return 0;
}

/** Decodes a JSON string literal (with its quotes). */
export function unquote(raw: string): string {
  const n = raw.length - 1;
  if (raw.indexOf("\\") < 0) return raw.substring(1, n);
  let out = "";
  let from = 1;
  for (let i = 1; i < n; i++) {
    if (raw.charCodeAt(i) != 92) continue;
    out += raw.substring(from, i);
    const e = raw.charCodeAt(++i);
    if (e == 110) out += "\n";
    else if (e == 116) out += "\t";
    else if (e == 114) out += "\r";
    else if (e == 98) out += "\b";
    else if (e == 102) out += "\f";
    else if (e == 117 && i + 4 < n + 1) {
      const u = (hexDigit(raw.charCodeAt(i + 1)) << 12) | (hexDigit(raw.charCodeAt(i + 2)) << 8) |
        (hexDigit(raw.charCodeAt(i + 3)) << 4) | hexDigit(raw.charCodeAt(i + 4));
      out += String.fromCharCode(u);
      i += 4;
    } else out += String.fromCharCode(e);
    from = i + 1;
  }
  return out + raw.substring(from, n);
}

/** The raw texts of the elements of the JSON array `s` (empty when `s` is not an array). */
export function arrayItems(s: string): string[] {
  const out: string[] = [];
  let i = skipSpace(s, 0);
  if (i >= s.length || s.charCodeAt(i) != 91) return out;
  i = skipSpace(s, i + 1);
  while (i < s.length && s.charCodeAt(i) != 93) {
    const end = valueEnd(s, i);
    if (end < 0) break;
    out.push(s.substring(i, end));
    i = skipSpace(s, end);
    if (i < s.length && s.charCodeAt(i) == 44) i = skipSpace(s, i + 1);
  }
  return out;
}

/** A JSON string literal of `value`. */
export function quote(value: string): string {
  let out = "\"";
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 32 && c != 34 && c != 92) continue;
    out += value.substring(from, i);
    if (c == 34) out += "\\\"";
    else if (c == 92) out += "\\\\";
    else if (c == 10) out += "\\n";
    else if (c == 13) out += "\\r";
    else if (c == 9) out += "\\t";
    else {
      const hex = "0123456789abcdef";
      out += "\\u00" + hex.charAt(c >> 4) + hex.charAt(c & 15);
    }
    from = i + 1;
  }
  return out + value.substring(from) + "\"";
}

/** Whether `s` is one well-formed JSON value (structure only; whitespace around allowed). */
export function isJsonValue(s: string): bool {
  const start = skipSpace(s, 0);
  const end = valueEnd(s, start);
  return end > start && skipSpace(s, end) == s.length;
}
