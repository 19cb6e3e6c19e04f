/**
 * A small JSON toolkit for the provider: a strict validator, a scanner of an object's top-level
 * members (raw value texts, nothing else built), array items, and string quoting. Provider
 * payloads carry free-form JSON (tool input schemas, tool arguments) that is passed through as
 * text, so no typed classes are generated for them.
 */

import { quote, unquote } from "../internal/scan";

function isSpace(c: i32): bool {
  return c == 32 || c == 10 || c == 13 || c == 9;
}

/** Skips whitespace from `i`. */
export function skipSpace(s: string, i: i32): i32 {
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i;
}

function stringEnd(s: string, i: i32): i32 {
  const n = s.length;
  for (let j = i + 1; j < n; j++) {
    const d = s.charCodeAt(j);
    if (d == 92) j++;
    else if (d == 34) return j + 1;
    else if (d < 32) return -1;
  }
  return -1;
}

function literalEnd(s: string, i: i32, word: string): i32 {
  if (s.substr(i, word.length) == word) return i + word.length;
  return -1;
}

function numberEnd(s: string, i: i32): i32 {
  let j = i;
  const n = s.length;
  if (j < n && s.charCodeAt(j) == 45) j++;
  const digits = j;
  while (j < n && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j++;
  if (j == digits) return -1;
  if (j < n && s.charCodeAt(j) == 46) {
    j++;
    const f = j;
    while (j < n && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j++;
    if (j == f) return -1;
  }
  if (j < n && (s.charCodeAt(j) == 101 || s.charCodeAt(j) == 69)) {
    j++;
    if (j < n && (s.charCodeAt(j) == 43 || s.charCodeAt(j) == 45)) j++;
    const e = j;
    while (j < n && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j++;
    if (j == e) return -1;
  }
  return j;
}

/** Where the well-formed JSON value starting at `i` ends (exclusive), or -1 when malformed. */
export function valueEnd(s: string, i: i32, depth: i32 = 0): i32 {
  if (depth > 256) return -1;
  i = skipSpace(s, i);
  if (i >= s.length) return -1;
  const c = s.charCodeAt(i);
  if (c == 34) return stringEnd(s, i);
  if (c == 123 || c == 91) {
    const close = c == 123 ? 125 : 93;
    let j = skipSpace(s, i + 1);
    if (j < s.length && s.charCodeAt(j) == close) return j + 1;
    while (j < s.length) {
      if (c == 123) {
        if (s.charCodeAt(j) != 34) return -1;
        j = stringEnd(s, j);
        if (j < 0) return -1;
        j = skipSpace(s, j);
        if (j >= s.length || s.charCodeAt(j) != 58) return -1;
        j = j + 1;
      }
      j = valueEnd(s, j, depth + 1);
      if (j < 0) return -1;
      j = skipSpace(s, j);
      if (j >= s.length) return -1;
      const d = s.charCodeAt(j);
      if (d == close) return j + 1;
      if (d != 44) return -1;
      j = skipSpace(s, j + 1);
    }
    return -1;
  }
  if (c == 116) return literalEnd(s, i, "true");
  if (c == 102) return literalEnd(s, i, "false");
  if (c == 110) return literalEnd(s, i, "null");
  return numberEnd(s, i);
}

/** Whether `s` is exactly one well-formed JSON value (whitespace around allowed). */
export function isJson(s: string): bool {
  const end = valueEnd(s, 0);
  return end > 0 && skipSpace(s, end) == s.length;
}

/** Whether `s` is a well-formed JSON object. */
export function isJsonObject(s: string): bool {
  const i = skipSpace(s, 0);
  return i < s.length && s.charCodeAt(i) == 123 && isJson(s);
}

/** The top-level members of a JSON object: keys (decoded) and raw value texts. */
export class Obj {
  keys: string[] = [];
  values: string[] = [];
  /** False when the text was not a well-formed object. */
  ok: bool = false;

  constructor(s: string) {
    this.ok = this.scan(s);
  }

  private scan(s: string): bool {
    let i = skipSpace(s, 0);
    if (i >= s.length || s.charCodeAt(i) != 123) return false;
    i = skipSpace(s, i + 1);
    if (i < s.length && s.charCodeAt(i) == 125) return true;
    while (i < s.length) {
      if (s.charCodeAt(i) != 34) return false;
      const keyEnd = stringEnd(s, i);
      if (keyEnd < 0) return false;
      const key = unquote(s.substring(i, keyEnd));
      i = skipSpace(s, keyEnd);
      if (i >= s.length || s.charCodeAt(i) != 58) return false;
      i = skipSpace(s, i + 1);
      const end = valueEnd(s, i);
      if (end < 0) return false;
      this.keys.push(key);
      this.values.push(s.substring(i, end));
      i = skipSpace(s, end);
      if (i < s.length && s.charCodeAt(i) == 44) {
        i = skipSpace(s, i + 1);
        continue;
      }
      return i < s.length && s.charCodeAt(i) == 125;
    }
    return false;
  }

  /** The raw value text of `key`, or null when absent. */
  raw(key: string): string | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.values[i];
    return null;
  }

  /** The raw value text of `key` unless absent or `null`. */
  present(key: string): string | null {
    const r = this.raw(key);
    if (r === null || r == "null") return null;
    return r;
  }

  /** The decoded string value of `key`, or null when absent or not a string. */
  str(key: string): string | null {
    const r = this.raw(key);
    if (r === null || r.length < 2 || r.charCodeAt(0) != 34) return null;
    return unquote(r);
  }

  /** The string value of `key`, or `fallback`. */
  strOr(key: string, fallback: string): string {
    const v = this.str(key);
    return v !== null ? v : fallback;
  }

  /** The integer part of the number value of `key`, or `fallback` when absent or not a number. */
  int(key: string, fallback: i64 = 0): i64 {
    const r = this.raw(key);
    if (r === null) return fallback;
    return parseIntText(r, fallback);
  }

  /** A member as a nested object scan (not ok when absent or not an object). */
  obj(key: string): Obj {
    const r = this.raw(key);
    return new Obj(r !== null ? r : "");
  }
}

/** The integer value at the start of `text` (digits after an optional `-`), or `fallback`. */
export function parseIntText(text: string, fallback: i64): i64 {
  let v: i64 = 0;
  let neg = false;
  let i = 0;
  let any = false;
  if (text.length > 0 && text.charCodeAt(0) == 45) {
    neg = true;
    i = 1;
  }
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    v = v * 10 + <i64> (c - 48);
    any = true;
  }
  if (!any) return fallback;
  return neg ? -v : v;
}

/** The raw element texts of the JSON array `s` (empty when `s` is not an array). */
export function items(s: string | null): string[] {
  const out: string[] = [];
  if (s === null) return out;
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

// String literals are the SDK's own codec (one implementation for guests and kits).
export { quote, unquote };

/** The text of a message `content`: a string as is, text parts joined, anything else as JSON. */
export function contentText(raw: string | null): string {
  if (raw === null || raw == "null") return "";
  if (raw.length >= 2 && raw.charCodeAt(0) == 34) return unquote(raw);
  const i = skipSpace(raw, 0);
  if (i < raw.length && raw.charCodeAt(i) == 91) {
    const parts = items(raw);
    let out = "";
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k];
      if (p.length >= 2 && p.charCodeAt(0) == 34) {
        out += (out.length > 0 ? "\n" : "") + unquote(p);
        continue;
      }
      const text = new Obj(p).str("text");
      if (text !== null) out += (out.length > 0 ? "\n" : "") + text;
    }
    return out;
  }
  return raw;
}
