/**
 * tools-fs: the model's file tools, over the session's copy-on-write overlay of the workspace
 * (`workspace://`). Reads see the overlay (earlier writes of the session included); writes land
 * in it, so `astrid diff` shows them and nothing reaches the workspace before `astrid commit`.
 * Reference: docs/capsules/tools-fs.md.
 */
import { fs, HostError, Result, Status } from "@astrid/sdk";

/** Lines read_file returns when no limit is given. */
const DEFAULT_LINES: i32 = 2000;
/** Characters of text a tool answers at most (the rest is cut, with a note). */
const MAX_CHARS: i32 = 100000;
/** Results glob and search answer when no max_results is given, and the most they answer. */
const DEFAULT_RESULTS: i32 = 100;
const MAX_RESULTS: i32 = 1000;
/** Directory entries a walk visits at most. */
const MAX_WALK: i32 = 20000;
/** Characters of one matching line search shows. */
const MAX_LINE: i32 = 300;

/** Arguments of read_file. */
@json
class ReadArgs {
  /** The file, relative to the workspace root (or workspace://…). */
  path!: string;
  /** Lines to skip from the start (0: from the first line). */
  offset: i32 = 0;
  /** Lines to return at most (0: 2000). */
  limit: i32 = 0;
}

/** Arguments of write_file. */
@json
class WriteArgs {
  /** The file, relative to the workspace root (or workspace://…). */
  path!: string;
  /** The whole new content of the file. */
  content!: string;
}

/** Arguments of edit_file. */
@json
class EditArgs {
  /** The file, relative to the workspace root (or workspace://…). */
  path!: string;
  /** The exact text to replace (whitespace included). */
  old!: string;
  /** The text to put in its place. */
  @alias("new")
  replacement!: string;
  /** Replace every occurrence instead of requiring exactly one. */
  replace_all: bool = false;
}

/** Arguments of list_dir. */
@json
class ListArgs {
  /** The directory, relative to the workspace root ("" or "." for the root). */
  path: string = "";
}

/** Arguments of glob. */
@json
class GlobArgs {
  /** The glob: * and ? within a path segment, ** across segments; without a / it matches file names. */
  pattern!: string;
  /** The directory to search under ("" for the workspace root). */
  path: string = "";
  /** Paths to answer at most (0: 100; at most 1000). */
  max_results: i32 = 0;
}

/** Arguments of search. */
@json
class SearchArgs {
  /** The literal text to look for (case-sensitive). */
  pattern!: string;
  /** The directory to search under ("" for the workspace root). */
  path: string = "";
  /** Only search files matching this glob (as for the glob tool; "" for every file). */
  glob: string = "";
  /** Matching lines to answer at most (0: 100; at most 1000). */
  max_results: i32 = 0;
}

// ---------------------------------------------------------------------------------------------
// Paths

/** A tool's path as a workspace-relative path ("" for the root); other schemes are kept. */
function normalize(path: string): string {
  let p = path.trim();
  if (p.startsWith("workspace://")) p = p.substring(12);
  while (p.startsWith("./")) p = p.substring(2);
  while (p.length > 1 && p.endsWith("/") && !p.endsWith("://")) p = p.substring(0, p.length - 1);
  if (p == ".") p = "";
  return p;
}

/** `a` and `b` joined with one `/`. */
function join(a: string, b: string): string {
  if (a.length == 0) return b;
  if (b.length == 0) return a;
  if (a.endsWith("://") || a.endsWith("/")) return a + b;
  return a + "/" + b;
}

/** What the host is given for a normalized path. */
function target(path: string): string {
  return path.length == 0 ? "workspace://" : path;
}

/** The path's parent directory ("" for a top-level name). */
function parentOf(path: string): string {
  const at = path.lastIndexOf("/");
  if (at <= 0) return "";
  const parent = path.substring(0, at);
  return parent.endsWith(":/") ? path.substring(0, at + 1) : parent;
}

/** The path's last segment. */
function baseName(path: string): string {
  const at = path.lastIndexOf("/");
  return at < 0 ? path : path.substring(at + 1);
}

/** A host failure as the tool's failure, naming what was being done. */
function failed<T>(what: string, path: string, error: HostError): Result<T> {
  return Result.err<T>(new HostError(error.status, what + ' "' + path + '": ' + error.message));
}

function binary(path: string): Result<string> {
  return Result.fail<string>(
    'File "' + path + '" is binary (it holds NUL bytes): these tools read and edit text only',
  );
}

function required<T>(name: string, value: string): Result<T> | null {
  if (value.length == 0) {
    return Result.fail<T>("Argument " + name + " is empty: give a non-empty " + name);
  }
  return null;
}

function cap(count: i32): i32 {
  if (count <= 0) return DEFAULT_RESULTS;
  return count > MAX_RESULTS ? MAX_RESULTS : count;
}

// ---------------------------------------------------------------------------------------------
// Globs

/** Whether `s` from `si` matches `p` from `pi`: * and ? stay within a segment, ** crosses. */
function globAt(p: string, pi: i32, s: string, si: i32): bool {
  while (pi < p.length) {
    const c = p.charCodeAt(pi);
    if (c == 42) {
      if (pi + 1 < p.length && p.charCodeAt(pi + 1) == 42) {
        let next = pi + 2;
        if (next < p.length && p.charCodeAt(next) == 47) {
          // "**/": zero or more whole segments.
          next++;
          if (globAt(p, next, s, si)) return true;
          for (let k = si; k < s.length; k++) {
            if (s.charCodeAt(k) == 47 && globAt(p, next, s, k + 1)) return true;
          }
          return false;
        }
        for (let k = si; k <= s.length; k++) {
          if (globAt(p, next, s, k)) return true;
        }
        return false;
      }
      for (let k = si; k <= s.length; k++) {
        if (globAt(p, pi + 1, s, k)) return true;
        if (k < s.length && s.charCodeAt(k) == 47) return false;
      }
      return false;
    }
    if (si >= s.length) return false;
    const d = s.charCodeAt(si);
    if (c == 63) {
      if (d == 47) return false;
    } else if (c != d) {
      return false;
    }
    pi++;
    si++;
  }
  return si == s.length;
}

/** Whether `rel` (relative to the search base) matches `pattern`; no `/` in it: the name. */
function globMatch(pattern: string, rel: string): bool {
  if (pattern.length == 0) return true;
  if (pattern.indexOf("/") < 0) return globAt(pattern, 0, baseName(rel), 0);
  return globAt(pattern, 0, rel, 0);
}

/** Every file under `base` (paths relative to it), sorted per directory; `.git` is skipped. */
class Walk {
  files: string[] = [];
  truncated: bool = false;
  error: HostError | null = null;
}

function walk(base: string, stopAt: i32, pattern: string): Walk {
  const out = new Walk();
  const pending: string[] = [""];
  let visited = 0;
  while (pending.length > 0) {
    const rel = pending.shift();
    const listing = fs.readdir(target(join(base, rel)));
    if (listing.isErr) {
      if (rel.length == 0) {
        out.error = listing.error;
        return out;
      }
      continue; // an unreadable subdirectory (denied by policy, removed meanwhile) is skipped
    }
    const entries = listing.unwrap();
    for (let i = 0; i < entries.length; i++) {
      visited++;
      if (visited > MAX_WALK) {
        out.truncated = true;
        return out;
      }
      const entry = entries[i];
      const path = join(rel, entry.name);
      if (entry.kind == "dir") {
        if (entry.name != ".git") pending.push(path);
      } else if (entry.kind == "file" && globMatch(pattern, path)) {
        out.files.push(path);
        if (out.files.length >= stopAt) {
          out.truncated = true;
          return out;
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tools

/** Reads a text file of the workspace, optionally a window of its lines. */
@tool("read_file")
function readFile(args: ReadArgs): Result<string> {
  const bad = required<string>("path", args.path);
  if (bad !== null) return bad;
  const path = normalize(args.path);
  const read = fs.readText(target(path));
  if (read.isErr) return failed<string>("Cannot read", args.path, read.error!);
  const text = read.unwrap();
  if (text.indexOf("\0") >= 0) return binary(path);
  if (args.offset < 0 || args.limit < 0) {
    return Result.fail<string>(
      "Arguments offset and limit may not be negative: got offset " + args.offset.toString() +
        ", limit " + args.limit.toString(),
    );
  }
  const limit = args.limit == 0 ? DEFAULT_LINES : args.limit;
  if (args.offset == 0 && text.length <= MAX_CHARS) {
    // The common case: the whole file, when it is short enough.
    let lines = 1;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) == 10) lines++;
    if (lines <= limit) return Result.ok<string>(text);
  }
  const lines = text.split("\n");
  const total = lines.length;
  const start = args.offset > total ? total : args.offset;
  let end = start + limit;
  if (end > total) end = total;
  let body = lines.slice(start, end).join("\n");
  let cut = false;
  if (body.length > MAX_CHARS) {
    body = body.substring(0, MAX_CHARS);
    cut = true;
  }
  let note = "\n[lines " + start.toString() + "-" + (end - 1).toString() + " of " +
    total.toString() + " (counted from 0)";
  if (cut) note += "; cut at " + MAX_CHARS.toString() + " characters";
  if (end < total || cut) note += "; pass offset to read on";
  return Result.ok<string>(body + note + "]");
}

/** Creates or replaces a file of the workspace (in the session overlay). */
@tool("write_file")
function writeFile(args: WriteArgs): Result<string> {
  const bad = required<string>("path", args.path);
  if (bad !== null) return bad;
  const path = normalize(args.path);
  if (path.length == 0) {
    return Result.fail<string>('Argument path "' + args.path + '" is a directory: name a file');
  }
  const parent = parentOf(path);
  if (parent.length > 0) {
    const made = fs.mkdir(parent);
    if (made.isErr) return failed<string>("Cannot create the directory of", args.path, made.error!);
  }
  const wrote = fs.writeText(path, args.content);
  if (wrote.isErr) return failed<string>("Cannot write", args.path, wrote.error!);
  const bytes = String.UTF8.byteLength(args.content);
  return Result.ok<string>("Wrote " + bytes.toString() + " bytes to " + path);
}

/** Replaces an exact piece of text in a file of the workspace. */
@tool("edit_file")
function editFile(args: EditArgs): Result<string> {
  const bad = required<string>("path", args.path);
  if (bad !== null) return bad;
  if (args.old.length == 0) {
    return Result.fail<string>("Argument old is empty: give the exact text to replace");
  }
  const path = normalize(args.path);
  const read = fs.readText(target(path));
  if (read.isErr) return failed<string>("Cannot read", args.path, read.error!);
  const text = read.unwrap();
  if (text.indexOf("\0") >= 0) return binary(path);
  let count = 0;
  let at = text.indexOf(args.old);
  const first = at;
  while (at >= 0) {
    count++;
    at = text.indexOf(args.old, at + args.old.length);
  }
  if (count == 0) {
    return Result.fail<string>(
      'Text to replace not found in "' + path +
        '": old must match the file exactly, whitespace included; read the file again',
      Status.NOT_FOUND,
    );
  }
  if (count > 1 && !args.replace_all) {
    return Result.fail<string>(
      'Text to replace occurs ' + count.toString() + ' times in "' + path +
        '" (at most 1 without replace_all): add surrounding lines to old, or set replace_all',
      Status.CONFLICT,
    );
  }
  const edited = args.replace_all
    ? text.replaceAll(args.old, args.replacement)
    : text.substring(0, first) + args.replacement + text.substring(first + args.old.length);
  const wrote = fs.writeText(path, edited);
  if (wrote.isErr) return failed<string>("Cannot write", args.path, wrote.error!);
  return Result.ok<string>(
    "Replaced " + count.toString() + (count == 1 ? " occurrence" : " occurrences") + " in " + path,
  );
}

/** Lists a directory of the workspace. */
@tool("list_dir")
function listDir(args: ListArgs): Result<string> {
  const path = normalize(args.path);
  const listing = fs.readdir(target(path));
  if (listing.isErr) return failed<string>("Cannot list", args.path, listing.error!);
  const entries = listing.unwrap();
  if (entries.length == 0) return Result.ok<string>("(empty directory)");
  const lines = new Array<string>(0);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    lines.push(entry.kind == "dir" ? entry.name + "/" : entry.name);
  }
  return Result.ok<string>(lines.join("\n"));
}

/** Finds files whose path matches a glob. */
@tool("glob")
function globFiles(args: GlobArgs): Result<string> {
  const bad = required<string>("pattern", args.pattern);
  if (bad !== null) return bad;
  const base = normalize(args.path);
  const limit = cap(args.max_results);
  const found = walk(base, limit, args.pattern);
  if (found.error !== null) return failed<string>("Cannot list", args.path, found.error!);
  const lines = new Array<string>(0);
  for (let i = 0; i < found.files.length; i++) lines.push(join(base, found.files[i]));
  if (lines.length == 0) return Result.ok<string>("No files match " + args.pattern);
  let text = lines.join("\n");
  if (found.truncated) text += "\n[stopped after " + lines.length.toString() + " results]";
  return Result.ok<string>(text);
}

/** Searches the text files of the workspace for a literal substring. */
@tool("search")
function searchFiles(args: SearchArgs): Result<string> {
  const bad = required<string>("pattern", args.pattern);
  if (bad !== null) return bad;
  const base = normalize(args.path);
  const limit = cap(args.max_results);
  const found = walk(base, MAX_WALK, args.glob);
  if (found.error !== null) return failed<string>("Cannot list", args.path, found.error!);
  const lines = new Array<string>(0);
  let stopped = false;
  for (let i = 0; i < found.files.length && !stopped; i++) {
    const path = join(base, found.files[i]);
    const read = fs.readText(path);
    if (read.isErr) continue; // unreadable (policy, too large): skipped
    const text = read.unwrap();
    if (text.indexOf(args.pattern) < 0 || text.indexOf("\0") >= 0) continue;
    const fileLines = text.split("\n");
    for (let n = 0; n < fileLines.length; n++) {
      let line = fileLines[n];
      if (line.indexOf(args.pattern) < 0) continue;
      if (line.length > MAX_LINE) line = line.substring(0, MAX_LINE) + "…";
      lines.push(path + ":" + (n + 1).toString() + ": " + line);
      if (lines.length >= limit) {
        stopped = true;
        break;
      }
    }
  }
  if (lines.length == 0) return Result.ok<string>("No matches for " + args.pattern);
  let text = lines.join("\n");
  if (stopped || found.truncated) {
    text += "\n[stopped after " + lines.length.toString() + " matches]";
  }
  return Result.ok<string>(text);
}
