/**
 * Folder-private: where each key of a TOML document is written. smol-toml returns values
 * only, so this scans the (already validated) text once and maps every key path to its line
 * and column. A path is a list of keys and array indices: `["tool", 1, "name"]` is the `name`
 * of the second `[[tool]]`; `["publish", "a.b", "wit"]` a key of an inline table.
 *
 * @module
 */

/** A key path: table and key names, and 0-based indices into arrays (of tables). */
export type KeyPath = readonly (string | number)[];

/** Where a key is written: 1-based line and column. */
export interface KeyLocation {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column of the key's first character. */
  readonly column: number;
}

const BARE_RE = /^[A-Za-z0-9_-]+$/;

/** Formats a path for messages: `tool[1].name`, `publish."a.b".wit`. */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += (out === "" ? "" : ".") + (BARE_RE.test(p) ? p : JSON.stringify(p));
  }
  return out;
}

/** Locates the keys of one TOML document. */
export class TomlLocator {
  readonly #at = new Map<string, KeyLocation>();

  /** Scans `text` once; lookups are then map reads. A scan problem only loses locations. */
  constructor(text: string) {
    try {
      new Scanner(text, (path, loc) => {
        const id = JSON.stringify(path);
        if (!this.#at.has(id)) this.#at.set(id, loc);
      }).document();
    } catch {
      // Lenient: the parser already accepted the text; keep what was located.
    }
  }

  /** Where `path` is written, else where its nearest located parent is. */
  find(path: KeyPath): KeyLocation | undefined {
    for (let n = path.length; n > 0; n--) {
      const loc = this.#at.get(JSON.stringify(path.slice(0, n)));
      if (loc) return loc;
    }
    return undefined;
  }

  /** Where exactly `path` is written (no fallback to a parent). */
  exact(path: KeyPath): KeyLocation | undefined {
    return this.#at.get(JSON.stringify(path));
  }
}

class Scanner {
  #s: string;
  #i = 0;
  #line = 1;
  #lineStart = 0;
  #found: (path: (string | number)[], loc: KeyLocation) => void;
  /** Counts of arrays of tables declared by `[[header]]`, keyed by resolved path. */
  #aot = new Map<string, number>();

  constructor(text: string, found: (path: (string | number)[], loc: KeyLocation) => void) {
    this.#s = text;
    this.#found = found;
  }

  document(): void {
    let table: (string | number)[] = [];
    for (;;) {
      this.#skipBlank(true);
      if (this.#i >= this.#s.length) return;
      const loc = this.#loc();
      if (this.#s[this.#i] === "[") {
        const array = this.#s[this.#i + 1] === "[";
        this.#i += array ? 2 : 1;
        const parts = this.#key();
        this.#skipBlank(false);
        this.#i += array ? 2 : 1;
        table = this.#resolveHeader(parts, array, loc);
        continue;
      }
      const parts = this.#key();
      this.#skipBlank(false);
      if (this.#s[this.#i] !== "=") throw new Error("expected =");
      this.#i++;
      const path = [...table];
      for (const p of parts) {
        path.push(p);
        this.#found([...path], loc);
      }
      this.#value(path);
    }
  }

  #resolveHeader(parts: string[], array: boolean, loc: KeyLocation): (string | number)[] {
    const path: (string | number)[] = [];
    for (let k = 0; k < parts.length; k++) {
      path.push(parts[k]);
      const id = JSON.stringify(path);
      const last = k === parts.length - 1;
      this.#found([...path], loc);
      if (last && array) {
        const n = (this.#aot.get(id) ?? -1) + 1;
        this.#aot.set(id, n);
        path.push(n);
        this.#found([...path], loc);
      } else if (this.#aot.has(id)) {
        path.push(this.#aot.get(id) as number);
      }
    }
    return path;
  }

  #loc(): KeyLocation {
    return { line: this.#line, column: this.#i - this.#lineStart + 1 };
  }

  #newline(): void {
    this.#line++;
    this.#lineStart = this.#i + 1;
  }

  /** Skips spaces and tabs; with `lines`, also newlines and comments. */
  #skipBlank(lines: boolean): void {
    const s = this.#s;
    while (this.#i < s.length) {
      const c = s[this.#i];
      if (c === " " || c === "\t" || c === "\r") this.#i++;
      else if (c === "#") {
        while (this.#i < s.length && s[this.#i] !== "\n") this.#i++;
      } else if (c === "\n" && lines) {
        this.#newline();
        this.#i++;
      } else return;
    }
  }

  #key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.#skipBlank(false);
      const c = this.#s[this.#i];
      if (c === '"' || c === "'") parts.push(this.#string());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.#s.slice(this.#i, this.#i + 256));
        if (!m) throw new Error("expected a key");
        parts.push(m[0]);
        this.#i += m[0].length;
      }
      this.#skipBlank(false);
      if (this.#s[this.#i] !== ".") return parts;
      this.#i++;
    }
  }

  /** Reads a string starting at the cursor and returns its (decoded) value. */
  #string(): string {
    const s = this.#s;
    const q = s[this.#i];
    const multi = s.startsWith(q.repeat(3), this.#i);
    this.#i += multi ? 3 : 1;
    let out = "";
    while (this.#i < s.length) {
      const c = s[this.#i];
      if (multi && s.startsWith(q.repeat(3), this.#i)) {
        this.#i += 3;
        while (s[this.#i] === q) { // up to two quotes may end the content
          out += q;
          this.#i++;
        }
        return out;
      }
      if (!multi && c === q) {
        this.#i++;
        return out;
      }
      if (c === "\\" && q === '"') {
        const next = s[this.#i + 1];
        if (next === "\n") this.#newline();
        const esc: Record<string, string> = { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\" };
        out += esc[next] ?? next;
        this.#i += 2;
        continue;
      }
      if (c === "\n") this.#newline();
      out += c;
      this.#i++;
    }
    return out;
  }

  #value(path: (string | number)[]): void {
    this.#skipBlank(false);
    const s = this.#s;
    const c = s[this.#i];
    if (c === '"' || c === "'") {
      this.#string();
    } else if (c === "[") {
      this.#i++;
      for (let n = 0;; n++) {
        this.#skipBlank(true);
        if (s[this.#i] === "]" || this.#i >= s.length) {
          this.#i++;
          return;
        }
        this.#found([...path, n], this.#loc());
        this.#value([...path, n]);
        this.#skipBlank(true);
        if (s[this.#i] === ",") this.#i++;
      }
    } else if (c === "{") {
      this.#i++;
      for (;;) {
        this.#skipBlank(true);
        if (s[this.#i] === "}" || this.#i >= s.length) {
          this.#i++;
          return;
        }
        const loc = this.#loc();
        const parts = this.#key();
        this.#skipBlank(false);
        if (s[this.#i] !== "=") throw new Error("expected =");
        this.#i++;
        const sub = [...path];
        for (const p of parts) {
          sub.push(p);
          this.#found([...sub], loc);
        }
        this.#value(sub);
        this.#skipBlank(true);
        if (s[this.#i] === ",") this.#i++;
      }
    } else {
      while (this.#i < s.length && !",]}\n#".includes(s[this.#i])) this.#i++;
    }
  }
}
