/**
 * Files through the session's copy-on-write VFS: `workspace://…` (the session overlay: writes
 * are undoable until commit), `home://…`, `global://…`, or a path relative to the workspace.
 * Every call is checked against `[capabilities] fs_read`/`fs_write` (DENIED otherwise) and the
 * security pipeline. Errors: `NOT_FOUND`, `DENIED`, `CONFLICT` (not a directory, not empty),
 * `LIMIT_EXCEEDED` (file or listing too large), `INVALID_ARGUMENT` (bad path), `IO`.
 */
import { JSON } from "json-as";
import {
  fs_exists, fs_mkdir, fs_read_file, fs_readdir, fs_stat, fs_unlink, fs_write_file,
} from "./internal/abi";
import { Request } from "./internal/request";
import { Reply } from "./internal/reply";
import { Outcome, Result } from "./result";

/** One entry of a directory listing. */
@json
export class DirEntry {
  /** The entry's name (no path). */
  name: string = "";
  /** `"file"`, `"dir"` or `"symlink"`. */
  kind: string = "";
}

/** What {@link stat} answers. */
@json
export class FileStat {
  /** `"file"`, `"dir"` or `"symlink"`. */
  kind: string = "";
  /** Size in bytes. */
  size: f64 = 0;
  /** Modification time, ms since the epoch. */
  mtime: f64 = 0;
}

function path1(path: string): Request {
  return Request.reset().str(path);
}

/** Whether `path` exists (symlinks followed). */
export function exists(path: string): Result<bool> {
  const req = path1(path);
  const reply = Reply.of(fs_exists(req.ptr, req.len));
  if (!reply.ok) return reply.fail<bool>("fs.exists");
  return Result.ok<bool>(reply.text() == "true");
}

/** The bytes of file `path`. */
export function read(path: string): Result<ArrayBuffer> {
  const req = path1(path);
  const reply = Reply.of(fs_read_file(req.ptr, req.len));
  if (!reply.ok) return reply.fail<ArrayBuffer>("fs.read");
  return Result.ok<ArrayBuffer>(reply.bytes());
}

/** The text (UTF-8) of file `path`. */
export function readText(path: string): Result<string> {
  const req = path1(path);
  const reply = Reply.of(fs_read_file(req.ptr, req.len));
  if (!reply.ok) return reply.fail<string>("fs.readText");
  return Result.ok<string>(reply.text());
}

/** Creates or replaces file `path` with `data` (its parent must exist). */
export function write(path: string, data: ArrayBuffer): Outcome {
  const req = Request.reset().str(path).bytes(data);
  return Reply.of(fs_write_file(req.ptr, req.len)).outcome("fs.write");
}

/** Creates or replaces file `path` with `text` as UTF-8. */
export function writeText(path: string, text: string): Outcome {
  const req = Request.reset().str(path).str(text);
  return Reply.of(fs_write_file(req.ptr, req.len)).outcome("fs.writeText");
}

/** Creates directory `path` and its missing parents (an existing directory is fine). */
export function mkdir(path: string): Outcome {
  const req = path1(path);
  return Reply.of(fs_mkdir(req.ptr, req.len)).outcome("fs.mkdir");
}

/** The entries of directory `path`, sorted by name. */
export function readdir(path: string): Result<DirEntry[]> {
  const req = path1(path);
  const reply = Reply.of(fs_readdir(req.ptr, req.len));
  if (!reply.ok) return reply.fail<DirEntry[]>("fs.readdir");
  return Result.ok<DirEntry[]>(JSON.parse<DirEntry[]>(reply.text()));
}

/** Kind, size and modification time of `path` (symlinks followed). */
export function stat(path: string): Result<FileStat> {
  const req = path1(path);
  const reply = Reply.of(fs_stat(req.ptr, req.len));
  if (!reply.ok) return reply.fail<FileStat>("fs.stat");
  return Result.ok<FileStat>(JSON.parse<FileStat>(reply.text()));
}

/** Removes a file, a symlink (not followed) or an empty directory. */
export function unlink(path: string): Outcome {
  const req = path1(path);
  return Reply.of(fs_unlink(req.ptr, req.len)).outcome("fs.unlink");
}
