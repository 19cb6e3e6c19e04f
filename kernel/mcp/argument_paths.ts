/**
 * Which arguments of an MCP tool call name files, so Astrid can check them before the server
 * sees the call. MCP has no standard way to mark a path argument, so the rule is
 * deliberately wide (a false positive costs a denied call, a miss costs a hole):
 *
 * 1. a string (or a list of strings) under a key that names a path — `path`, `paths`, `file`,
 *    `files`, `filename`, `dir`, `directory`, `folder`, `root`, `cwd`, `source`, `destination`,
 *    `src`, `dest`, `target`, `location`, `uri` — also as the last word of a longer key
 *    (`file_path`, `filePath`, `targetDir`, `root-dir`);
 * 2. any string starting with `file://`;
 * 3. any single-line string without spaces starting with `/` or `~`, except under keys that
 *    hold text or patterns (`content`, `text`, `pattern`, `query`, `regex`, `oldText`, …).
 *
 * Objects and lists are walked to a depth of 8. What a found value means (relative to which
 * directory, inside which root) is the engine's to decide.
 *
 * @example
 * ```ts
 * import { argumentPaths } from "./argument_paths.ts";
 * const found = argumentPaths({ source: "a.txt", destination: "/tmp/b", content: "/x" });
 * if (found.map((f) => f.argument).join() !== "source,destination") throw new Error();
 * ```
 *
 * @module
 */

/** A path-like value found in a call's arguments. */
export interface ArgumentPath {
  /** Where it was found: `path`, `paths[1]`, `edits[0].file`. */
  readonly argument: string;
  /** The value as the caller wrote it. */
  readonly value: string;
}

const PATH_WORDS = new Set([
  "path",
  "paths",
  "file",
  "files",
  "filename",
  "filenames",
  "filepath",
  "dir",
  "dirs",
  "directory",
  "directories",
  "folder",
  "folders",
  "root",
  "roots",
  "cwd",
  "source",
  "sources",
  "destination",
  "src",
  "dest",
  "target",
  "location",
  "uri",
  "uris",
]);

const TEXT_WORDS = new Set([
  "content",
  "contents",
  "text",
  "body",
  "data",
  "message",
  "pattern",
  "patterns",
  "query",
  "regex",
  "glob",
  "oldtext",
  "newtext",
  "old",
  "new",
  "code",
  "command",
  "script",
  "description",
  "title",
  "comment",
  "excludepatterns",
]);

const MAX_DEPTH = 8;

function words(key: string): string[] {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase().split(/[_\-\s.]+/).filter(
    Boolean,
  );
}

/** What a key says of its value; memoized, as every call of a tool repeats its keys. */
interface KeyKind {
  readonly path: boolean;
  readonly text: boolean;
}

const KEY_CACHE_LIMIT = 4096;
const keyKinds = new Map<string, KeyKind>();

function keyKind(key: string): KeyKind {
  let kind = keyKinds.get(key);
  if (kind === undefined) {
    const w = words(key);
    kind = {
      path: w.length > 0 && PATH_WORDS.has(w[w.length - 1]),
      text: TEXT_WORDS.has(key.toLowerCase().replace(/[_\-]/g, "")) ||
        w.some((x) => TEXT_WORDS.has(x) && x !== "data"),
    };
    if (keyKinds.size >= KEY_CACHE_LIMIT) keyKinds.clear();
    keyKinds.set(key, kind);
  }
  return kind;
}

function keyNamesPath(key: string): boolean {
  return keyKind(key).path;
}

function keyHoldsText(key: string): boolean {
  return keyKind(key).text;
}

function looksAbsolute(value: string): boolean {
  return (value.startsWith("/") || value.startsWith("~")) && !/\s/.test(value);
}

/** The path-like values of `args` (see the module doc), in walk order. */
export function argumentPaths(args: unknown): ArgumentPath[] {
  const out: ArgumentPath[] = [];
  const walk = (value: unknown, at: string, key: string, pathKey: boolean, depth: number) => {
    if (depth > MAX_DEPTH) return;
    if (typeof value === "string") {
      if (
        pathKey || value.startsWith("file://") ||
        (looksAbsolute(value) && !keyHoldsText(key))
      ) out.push({ argument: at, value });
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${at}[${i}]`, key, pathKey, depth + 1));
      return;
    }
    if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        walk(v, at === "" ? k : `${at}.${k}`, k, keyNamesPath(k), depth + 1);
      }
    }
  };
  walk(args, "", "", false, 0);
  return out;
}
