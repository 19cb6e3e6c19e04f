/**
 * Folder-private TOML key helpers: formatting a key path as TOML writes it, and finding the
 * line and column where each key of a document is set (smol-toml returns values only).
 *
 * @module
 */

const BARE_RE = /^[A-Za-z0-9_-]+$/;

/** Formats a key path as a dotted TOML key: `pricing."local/*"`. */
export function formatKey(path: readonly string[]): string {
  return path.map((p) => (BARE_RE.test(p) ? p : JSON.stringify(p))).join(".");
}

/** Where a key is set: 1-based line and column. */
export interface KeyLocation {
  /** 1-based line. */
  line: number;
  /** 1-based column of the key's first character. */
  column: number;
}

/** Locates keys of one TOML document. */
export class KeyLocator {
  #at = new Map<string, KeyLocation>();

  /** Scans `text` once; lookups are then map reads. */
  constructor(text: string) {
    scan(text, (path, loc) => {
      const id = JSON.stringify(path);
      if (!this.#at.has(id)) this.#at.set(id, loc);
    });
  }

  /** Where `path` is set, else where its nearest located parent table or key is. */
  find(path: readonly string[]): KeyLocation | undefined {
    for (let n = path.length; n > 0; n--) {
      const loc = this.#at.get(JSON.stringify(path.slice(0, n)));
      if (loc) return loc;
    }
    return undefined;
  }
}

/** Parses a (possibly dotted, possibly quoted) key at `pos`; returns its parts and end. */
function readKey(line: string, pos: number): { parts: string[]; end: number } | undefined {
  const parts: string[] = [];
  let i = pos;
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      let raw = "";
      while (j < line.length && line[j] !== '"') {
        if (line[j] === "\\") {
          raw += line.slice(j, j + 2);
          j += 2;
        } else raw += line[j++];
      }
      if (j >= line.length) return undefined;
      try {
        parts.push(JSON.parse(`"${raw}"`));
      } catch {
        parts.push(raw);
      }
      i = j + 1;
    } else if (c === "'") {
      const j = line.indexOf("'", i + 1);
      if (j < 0) return undefined;
      parts.push(line.slice(i + 1, j));
      i = j + 1;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(line.slice(i));
      if (!m) return undefined;
      parts.push(m[0]);
      i += m[0].length;
    }
    while (line[i] === " " || line[i] === "\t") i++;
    if (line[i] !== ".") return { parts, end: i };
    i++;
  }
}

function scan(text: string, found: (path: string[], loc: KeyLocation) => void): void {
  const lines = text.split(/\r?\n/);
  let table: string[] = [];
  let openString: string | undefined;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (openString) {
      if (line.includes(openString)) openString = undefined;
      continue;
    }
    const start = line.search(/\S/);
    if (start < 0 || line[start] === "#") continue;
    if (line[start] === "[") {
      const array = line[start + 1] === "[";
      const key = readKey(line, start + (array ? 2 : 1));
      if (key && line[key.end] === "]") {
        table = key.parts;
        for (let k = 1; k <= table.length; k++) {
          found(table.slice(0, k), { line: n + 1, column: start + 1 });
        }
      }
      continue;
    }
    const key = readKey(line, start);
    if (!key || line[key.end] !== "=") continue;
    for (let k = 1; k <= key.parts.length; k++) {
      found([...table, ...key.parts.slice(0, k)], { line: n + 1, column: start + 1 });
    }
    const rest = line.slice(key.end + 1).trimStart();
    for (const delim of ['"""', "'''"]) {
      if (rest.startsWith(delim) && !rest.slice(3).includes(delim)) openString = delim;
    }
  }
}
