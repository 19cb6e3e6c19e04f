/**
 * Errors of the virtual filesystem: path resolution, the host and overlay filesystems, commit
 * and fold. Every rejection of a path has its own code so the security layer and the host ABI
 * can branch on it; messages quote the path as given (truncated past 120 characters).
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/vfs/`. */
export const VfsCode = {
  /** The path is not usable text: a NUL byte, unpaired UTF-16 surrogate, not a string, a slash after a scheme, a reserved whiteout-marker name, or removing the root; `data.path`, `data.reason`. */
  VFS_PATH_INVALID: "VFS_PATH_INVALID",
  /** The path is longer than 4,096 UTF-8 bytes (before or after symlinks); `data.path`, `data.length`, `data.limit`. */
  VFS_PATH_TOO_LONG: "VFS_PATH_TOO_LONG",
  /** A path component is longer than 255 UTF-8 bytes; `data.path`, `data.name`, `data.length`, `data.limit`. */
  VFS_NAME_TOO_LONG: "VFS_NAME_TOO_LONG",
  /** The path has a `..` segment, or is absolute and outside the root; `data.path`, `data.reason`. */
  VFS_PATH_ESCAPE: "VFS_PATH_ESCAPE",
  /** A symlink on the path points outside the root; `data.path`, `data.link` (root-relative), `data.target`. */
  VFS_SYMLINK_ESCAPE: "VFS_SYMLINK_ESCAPE",
  /** Resolving the path followed more than 40 symlinks (a loop); `data.path`, `data.limit`. */
  VFS_SYMLINK_LOOP: "VFS_SYMLINK_LOOP",
  /** The path names a scheme this filesystem or router does not serve; `data.path`, `data.scheme`. */
  VFS_SCHEME_UNKNOWN: "VFS_SCHEME_UNKNOWN",
  /** The path is reserved by the kernel (e.g. `home://.config`); `data.path`. */
  VFS_PATH_DENIED: "VFS_PATH_DENIED",
  /** The path, or a directory on it, does not exist; `data.path`. */
  VFS_NOT_FOUND: "VFS_NOT_FOUND",
  /** The path already exists (mkdir, writeFile with `createNew`); `data.path`. */
  VFS_EXISTS: "VFS_EXISTS",
  /** A directory was expected (a parent, readdir, rmdir); `data.path`. */
  VFS_NOT_A_DIRECTORY: "VFS_NOT_A_DIRECTORY",
  /** A file was expected but the path is a directory; `data.path`. */
  VFS_IS_A_DIRECTORY: "VFS_IS_A_DIRECTORY",
  /** The path is a device, FIFO or socket, which the VFS never opens; `data.path`. */
  VFS_NOT_A_FILE: "VFS_NOT_A_FILE",
  /** rmdir without `recursive` of a directory with entries, or a rename onto one; `data.path`. */
  VFS_NOT_EMPTY: "VFS_NOT_EMPTY",
  /** A write to a read-only filesystem (`global://` unless opened writable); `data.path`, `data.scheme`. */
  VFS_READ_ONLY: "VFS_READ_ONLY",
  /** A file is larger than the caller's `maxBytes`; `data.path`, `data.size`, `data.limit`. */
  VFS_TOO_LARGE: "VFS_TOO_LARGE",
  /** rename between two schemes (two filesystems); `data.from`, `data.to`. */
  VFS_CROSS_SCHEME: "VFS_CROSS_SCHEME",
  /** `commit({ strict: true })` found conflicts and applied nothing; `data.paths`. */
  VFS_CONFLICT: "VFS_CONFLICT",
  /** The overlay sidecar `state.json` is unreadable or belongs to another workspace; `data.path`, `data.field`. */
  VFS_STATE_INVALID: "VFS_STATE_INVALID",
  /** A whiteout could not be created (no mknod, no permission); `data.path`. */
  VFS_WHITEOUT_FAILED: "VFS_WHITEOUT_FAILED",
  /** Any other host filesystem failure; `data.path`, `data.op`. */
  VFS_IO: "VFS_IO",
} as const;

/** A code of {@link VfsCode}. */
export type VfsCode = typeof VfsCode[keyof typeof VfsCode];

/** Structured detail of a {@link VfsError}; which keys are set depends on the code. */
export interface VfsErrorData {
  /** The path as the caller gave it (truncated past 4,096 characters), or the canonical one. */
  path?: string;
  /** A short machine-readable reason (`nul`, `dotdot`, `outside-root`, …). */
  reason?: string;
  /** A UTF-8 byte length that broke a limit. */
  length?: number;
  /** The limit beside `length` or `size`. */
  limit?: number;
  /** The path component that is too long (truncated). */
  name?: string;
  /** The root-relative path of the symlink that escapes. */
  link?: string;
  /** The symlink's target as stored on disk. */
  target?: string;
  /** The scheme concerned. */
  scheme?: string;
  /** A file size in bytes. */
  size?: number;
  /** The source of a rename. */
  from?: string;
  /** The destination of a rename. */
  to?: string;
  /** The host operation that failed (`readFile`, `rename`, …). */
  op?: string;
  /** The malformed field of a sidecar file. */
  field?: string;
  /** Paths concerned (conflicting paths of a strict commit). */
  paths?: string[];
}

/** Raised by path resolution and every filesystem operation of `kernel/vfs/`. */
export class VfsError extends AstridError<VfsCode, VfsErrorData> {}

/** Quotes a path for a message: JSON-escaped (NUL shows as `\u0000`), cut past 120 characters. */
export function quotePath(path: string): string {
  const cut = path.length > 120 ? `${path.slice(0, 117)}...` : path;
  return JSON.stringify(cut);
}
