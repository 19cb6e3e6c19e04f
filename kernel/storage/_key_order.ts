/**
 * Key order shared by every backend: ascending UTF-8 bytes, which is Unicode code point order
 * (SQLite's BINARY collation on UTF-8 text). JavaScript's `<` compares UTF-16 units instead
 * and puts U+10000 before U+FFFF, so backends that sort in JavaScript use {@link compareKeys}.
 *
 * @module
 */

/** Compares two well-formed strings by code point (= UTF-8 byte) order. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

// Moves surrogates (astral code points) above U+E000..U+FFFF, keeping the rest in order.
function rank(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit;
}

/**
 * The least string greater than every string that starts with `prefix`, or `null` when
 * there is none (`prefix` is empty or all U+10FFFF). Keys starting with `prefix` are exactly
 * those with `prefix <= key < successor`, in UTF-8 byte order.
 */
export function prefixSuccessor(prefix: string): string | null {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      // Skip the surrogate block: no well-formed string has a code point there.
      return points.join("") + String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1);
    }
  }
  return null;
}

/** True when `a` and `b` hold the same bytes; `null` equals only `null`. */
export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
