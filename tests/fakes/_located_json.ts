/**
 * A JSON parser that also records the line each value starts on, keyed by its JSON path
 * (`turns[2].reply.text`), so script errors can name file, line and field. Same results as
 * `JSON.parse` for valid input.
 *
 * @module
 */

/** A parsed document and the line (1-based) of every value, by JSON path. */
export interface LocatedJson {
  /** The parsed value. */
  value: unknown;
  /** Line of the value at each JSON path; the root is `""`. */
  lines: ReadonlyMap<string, number>;
}

/** Raised for text that is not JSON; carries the 1-based line and column. */
export class JsonSyntaxFault extends Error {
  /** 1-based line of the fault. */
  readonly line: number;
  /** 1-based column of the fault. */
  readonly column: number;

  /** Creates a fault at a line and column. */
  constructor(message: string, line: number, column: number) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Appends an object key to a JSON path: `a.b`, or `a["x y"]` when the key is not a name. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  if (IDENT.test(key)) return path === "" ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

/** Parses `text` as JSON, recording where each value starts. */
export function parseLocatedJson(text: string): LocatedJson {
  const lines = new Map<string, number>();
  let pos = 0;
  let line = 1;
  let lineStart = 0;

  const fault = (message: string): never => {
    throw new JsonSyntaxFault(message, line, pos - lineStart + 1);
  };
  const skip = () => {
    while (pos < text.length) {
      const c = text[pos];
      if (c === "\n") {
        line++;
        lineStart = pos + 1;
      } else if (c !== " " && c !== "\t" && c !== "\r") break;
      pos++;
    }
  };
  const describe = () => pos >= text.length ? "end of input" : JSON.stringify(text[pos]);

  const parseString = (): string => {
    const start = pos;
    pos++;
    while (pos < text.length && text[pos] !== '"') {
      if (text[pos] === "\n") fault("Unterminated string");
      pos += text[pos] === "\\" ? 2 : 1;
    }
    if (pos >= text.length) fault("Unterminated string");
    pos++;
    try {
      return JSON.parse(text.slice(start, pos));
    } catch {
      pos = start;
      return fault("Invalid string escape or control character");
    }
  };

  const parseValue = (path: string): unknown => {
    skip();
    lines.set(path, line);
    const c = text[pos];
    if (c === "{") {
      pos++;
      const obj: Record<string, unknown> = {};
      skip();
      if (text[pos] === "}") {
        pos++;
        return obj;
      }
      while (true) {
        skip();
        if (text[pos] !== '"') fault(`Expected a quoted key, found ${describe()}`);
        const key = parseString();
        skip();
        if (text[pos] !== ":") {
          fault(`Expected ":" after key ${JSON.stringify(key)}, found ${describe()}`);
        }
        pos++;
        const value = parseValue(childPath(path, key));
        Object.defineProperty(obj, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        skip();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "}") {
          pos++;
          return obj;
        }
        fault(`Expected "," or "}" in object, found ${describe()}`);
      }
    }
    if (c === "[") {
      pos++;
      const arr: unknown[] = [];
      skip();
      if (text[pos] === "]") {
        pos++;
        return arr;
      }
      while (true) {
        arr.push(parseValue(childPath(path, arr.length)));
        skip();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "]") {
          pos++;
          return arr;
        }
        fault(`Expected "," or "]" in array, found ${describe()}`);
      }
    }
    if (c === '"') return parseString();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (m) {
      pos += m[0].length;
      return Number(m[0]);
    }
    return fault(`Unexpected ${describe()}`);
  };

  const value = parseValue("");
  skip();
  if (pos < text.length) fault(`Unexpected ${describe()} after the end of the document`);
  return { value, lines };
}
