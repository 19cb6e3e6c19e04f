/**
 * Glob patterns over `/`-separated resources (`fs:/work/repo/src/a.ts`, `tool:read_file`),
 * compiled to anchored regular expressions and cached.
 *
 * | syntax | matches |
 * | --- | --- |
 * | `*` | any run of characters except `/`, empty included; dotfiles too |
 * | `**` | a whole segment only: any number of segments, zero included (`a/**` needs `a/`) |
 * | `?` | one character (code point) except `/` |
 * | `[abc]` `[a-z]` `[!a]` `[^a]` | one character (never `/`) of / not of the class |
 * | `{a,b}` | either alternative; nesting and empty alternatives allowed |
 * | `\c` | the character `c` literally |
 *
 * Rejected with `GLOB_INVALID` (naming the position): an unclosed `{` or `[`, an unmatched `}`,
 * a trailing `\`, a reversed range, `**` glued to anything but `/` (`a**`, `***`), more than
 * {@link GLOB_LIMITS}. Matching is case-sensitive and does no Unicode normalization.
 *
 * @example
 * ```ts
 * import { matchGlob } from "./glob.ts";
 * if (!matchGlob("fs:/work/**\/*.ts", "fs:/work/repo/src/a.ts")) throw new Error("should match");
 * if (matchGlob("tool:*", "tool:a/b")) throw new Error("* must not cross /");
 * ```
 *
 * @module
 */
import { CapabilityCode, CapabilityError } from "./errors.ts";

/** Limits on patterns, so a pattern cannot make compilation or matching blow up. */
export const GLOB_LIMITS = {
  /** Longest pattern, in UTF-16 code units. */
  patternLength: 4096,
  /** Deepest `{` nesting. */
  braceDepth: 8,
  /** Most alternatives a pattern may expand to once its braces are multiplied out. */
  alternatives: 256,
  /** Compiled patterns kept in the cache (least recently used dropped first). */
  cacheSize: 1024,
} as const;

/** A compiled glob pattern. */
export class Glob {
  /** The pattern as written. */
  readonly pattern: string;
  /** The equivalent regular expression, anchored at both ends. */
  readonly regex: RegExp;
  /** The one string this pattern matches when it has no wildcards, else `null`. */
  readonly literal: string | null;
  /** A literal start every match shares (`""` when none), checked before the regex. */
  readonly prefix: string;

  /** Wraps a compiled pattern; use {@link compileGlob}. */
  constructor(
    pattern: string,
    parts: { regex: RegExp; literal: string | null; prefix: string },
  ) {
    this.pattern = pattern;
    this.regex = parts.regex;
    this.literal = parts.literal;
    this.prefix = parts.prefix;
  }

  /** True when `path` matches the whole pattern. */
  match(path: string): boolean {
    if (this.literal !== null) return path === this.literal;
    return path.startsWith(this.prefix) && this.regex.test(path);
  }
}

/** Escapes every glob metacharacter of `text`, giving a pattern that matches exactly `text`. */
export function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]{},]/g, "\\$&");
}

/** Compiled patterns; `hot` marks a hit since the entry was last passed over for eviction. */
const cache = new Map<string, { glob: Glob; hot: boolean }>();

/**
 * Compiles `pattern` through a bounded cache and throws `GLOB_INVALID` for a bad pattern.
 * Eviction is second-chance (an entry hit since it was last considered is kept), which is
 * close to least-recently-used while a hit costs one `Map.get`.
 */
export function compileGlob(pattern: string): Glob {
  const hit = cache.get(pattern);
  if (hit !== undefined) {
    hit.hot = true;
    return hit.glob;
  }
  const glob = compileUncached(pattern);
  if (cache.size >= GLOB_LIMITS.cacheSize) {
    for (const [oldest, entry] of cache) {
      cache.delete(oldest);
      if (!entry.hot) break;
      entry.hot = false;
      cache.set(oldest, entry); // second chance: back of the queue
    }
  }
  cache.set(pattern, { glob, hot: false });
  return glob;
}

/** True when `path` matches `pattern` (compiled through the cache); throws `GLOB_INVALID`. */
export function matchGlob(pattern: string, path: string): boolean {
  return compileGlob(pattern).match(path);
}

/** How many compiled patterns the cache holds now, and its bound. */
export function globCacheStats(): { size: number; limit: number } {
  return { size: cache.size, limit: GLOB_LIMITS.cacheSize };
}

// ---- parsing -------------------------------------------------------------------------------

type Atom =
  | { t: "lit"; s: string }
  | { t: "sep" }
  | { t: "star" }
  | { t: "globstar"; pos: number }
  | { t: "any" }
  | { t: "class"; re: string };

type Node = Atom | { t: "alt"; alts: Node[][] };

function invalid(pattern: string, position: number, why: string): CapabilityError {
  return new CapabilityError(
    CapabilityCode.GLOB_INVALID,
    `Invalid glob "${pattern}": ${why} at position ${position}`,
    { data: { pattern, position } },
  );
}

class Parser {
  readonly #p: string;
  #i = 0;

  constructor(pattern: string) {
    this.#p = pattern;
  }

  parse(): Node[] {
    const nodes = this.#seq(0);
    if (this.#i < this.#p.length) {
      throw invalid(this.#p, this.#i, `unmatched "}" (write \\} for a literal brace)`);
    }
    return nodes;
  }

  /** Parses until the end, or until `,`/`}` when inside braces (`depth > 0`). */
  #seq(depth: number): Node[] {
    const p = this.#p;
    const out: Node[] = [];
    while (this.#i < p.length) {
      const c = p[this.#i];
      const at = this.#i;
      if (depth > 0 && (c === "," || c === "}")) break;
      if (c === "}") break; // unmatched at top level: parse() reports it
      if (c === "\\") {
        if (this.#i + 1 >= p.length) {
          throw invalid(p, at, `trailing "\\" escapes nothing (write \\\\ for a backslash)`);
        }
        this.#i++;
        const ch = this.#codePoint();
        out.push(ch === "/" ? { t: "sep" } : { t: "lit", s: ch });
      } else if (c === "*") {
        let n = 0;
        while (p[this.#i] === "*") {
          n++;
          this.#i++;
        }
        if (n > 2) throw invalid(p, at, `"${"*".repeat(n)}" is not a wildcard (use * or **)`);
        out.push(n === 1 ? { t: "star" } : { t: "globstar", pos: at });
      } else if (c === "?") {
        this.#i++;
        out.push({ t: "any" });
      } else if (c === "[") {
        out.push(this.#class());
      } else if (c === "{") {
        out.push(this.#alt(depth + 1));
      } else if (c === "/") {
        this.#i++;
        out.push({ t: "sep" });
      } else {
        out.push({ t: "lit", s: this.#codePoint() });
      }
    }
    return out;
  }

  #codePoint(): string {
    const cp = this.#p.codePointAt(this.#i)!;
    const s = String.fromCodePoint(cp);
    this.#i += s.length;
    return s;
  }

  #alt(depth: number): Node {
    const p = this.#p;
    const open = this.#i;
    if (depth > GLOB_LIMITS.braceDepth) {
      throw invalid(p, open, `braces nest deeper than ${GLOB_LIMITS.braceDepth}`);
    }
    this.#i++;
    const alts: Node[][] = [];
    for (;;) {
      alts.push(this.#seq(depth));
      if (this.#i >= p.length) throw invalid(p, open, `unclosed "{"`);
      const c = p[this.#i++];
      if (c === "}") return { t: "alt", alts };
    }
  }

  #class(): Atom {
    const p = this.#p;
    const open = this.#i++;
    let negate = false;
    if (p[this.#i] === "!" || p[this.#i] === "^") {
      negate = true;
      this.#i++;
    }
    const ranges: [number, number][] = [];
    let first = true;
    for (;;) {
      if (this.#i >= p.length) throw invalid(p, open, `unclosed "["`);
      if (p[this.#i] === "]" && !first) {
        this.#i++;
        break;
      }
      first = false;
      const lo = this.#classChar(open);
      if (p[this.#i] === "-" && this.#i + 1 < p.length && p[this.#i + 1] !== "]") {
        const dash = this.#i++;
        const hi = this.#classChar(open);
        if (hi < lo) {
          const range = `${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)}`;
          throw invalid(p, dash, `range "${range}" is reversed`);
        }
        ranges.push([lo, hi]);
      } else {
        ranges.push([lo, lo]);
      }
    }
    const body = ranges.map(([lo, hi]) => lo === hi ? cls(lo) : `${cls(lo)}-${cls(hi)}`).join("");
    if (negate) return { t: "class", re: `[^${body}/]` };
    const hitsSlash = ranges.some(([lo, hi]) => lo <= SLASH && SLASH <= hi);
    return { t: "class", re: hitsSlash ? `(?!/)[${body}]` : `[${body}]` };
  }

  #classChar(open: number): number {
    const p = this.#p;
    if (p[this.#i] === "\\") {
      if (this.#i + 1 >= p.length) throw invalid(p, open, `unclosed "["`);
      this.#i++;
    }
    const cp = p.codePointAt(this.#i)!;
    this.#i += cp > 0xffff ? 2 : 1;
    return cp;
  }
}

const SLASH = 0x2f;

function cls(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

// ---- expansion and translation ---------------------------------------------------------------

function count(nodes: Node[]): number {
  let n = 1;
  for (const node of nodes) {
    if (node.t !== "alt") continue;
    let sum = 0;
    for (const alt of node.alts) sum = Math.min(sum + count(alt), GLOB_LIMITS.alternatives + 1);
    n = Math.min(n * sum, GLOB_LIMITS.alternatives + 1);
  }
  return n;
}

function expand(nodes: Node[]): Atom[][] {
  let acc: Atom[][] = [[]];
  for (const node of nodes) {
    if (node.t !== "alt") {
      for (const seq of acc) seq.push(node);
      continue;
    }
    const tails = node.alts.flatMap(expand);
    const next: Atom[][] = [];
    for (const head of acc) for (const tail of tails) next.push([...head, ...tail]);
    acc = next;
  }
  return acc;
}

const REGEX_META = /[\\^$.*+?()[\]{}|]/g;

function translate(pattern: string, atoms: Atom[]): string {
  let re = "";
  for (let i = 0; i < atoms.length; i++) {
    const a = atoms[i];
    switch (a.t) {
      case "lit":
        re += a.s.replace(REGEX_META, "\\$&");
        break;
      case "sep":
        re += "/";
        break;
      case "any":
        re += "[^/]";
        break;
      case "class":
        re += a.re;
        break;
      case "star":
        if (atoms[i - 1]?.t !== "star") re += "[^/]*";
        break;
      case "globstar": {
        const before = atoms[i - 1];
        const after = atoms[i + 1];
        if (
          (before !== undefined && before.t !== "sep") || (after !== undefined && after.t !== "sep")
        ) {
          throw invalid(
            pattern,
            a.pos,
            `"**" must be a whole segment between "/" (use * within one)`,
          );
        }
        if (after !== undefined) {
          re += "(?:.*/)?"; // zero or more whole segments, each followed by its "/"
          i++; // the "/" after ** is part of the group
        } else {
          re += ".*";
        }
        break;
      }
    }
  }
  return re;
}

function compileUncached(pattern: string): Glob {
  if (typeof pattern !== "string") {
    throw invalid(String(pattern), 0, "a pattern must be a string");
  }
  if (pattern.length > GLOB_LIMITS.patternLength) {
    throw invalid(
      pattern.slice(0, 64),
      GLOB_LIMITS.patternLength,
      `pattern is ${pattern.length} characters long (limit ${GLOB_LIMITS.patternLength})`,
    );
  }
  const nodes = new Parser(pattern).parse();
  const n = count(nodes);
  if (n > GLOB_LIMITS.alternatives) {
    throw invalid(
      pattern,
      pattern.indexOf("{"),
      `braces expand to more than ${GLOB_LIMITS.alternatives} alternatives`,
    );
  }
  const seqs = expand(nodes);
  const sources = [...new Set(seqs.map((atoms) => translate(pattern, atoms)))];
  const prefixes = seqs.map(literalPrefix);
  const literal = seqs.length === 1 && prefixes[0].length === seqs[0].length
    ? prefixes[0].text
    : null;
  let prefix = prefixes[0].text;
  for (const p of prefixes) {
    let n = 0;
    while (n < prefix.length && n < p.text.length && prefix[n] === p.text[n]) n++;
    prefix = prefix.slice(0, n);
  }
  const body = sources.length === 1 ? sources[0] : sources.map((s) => `(?:${s})`).join("|");
  return new Glob(pattern, { regex: new RegExp(`^(?:${body})$`, "su"), literal, prefix });
}

/** The literal text an expanded pattern starts with, and how many atoms it spans. */
function literalPrefix(atoms: Atom[]): { text: string; length: number } {
  let text = "";
  let length = 0;
  for (const a of atoms) {
    if (a.t === "lit") text += a.s;
    else if (a.t === "sep") text += "/";
    else break;
    length++;
  }
  return { text, length };
}
