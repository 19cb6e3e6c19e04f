/**
 * The lexical half of path resolution: the rules that need no filesystem. A VFS path is
 * checked in this order, and the first broken rule decides the code:
 *
 * 1. a string, without NUL and without unpaired UTF-16 surrogates → `VFS_PATH_INVALID`
 * 2. at most 4,096 UTF-8 bytes → `VFS_PATH_TOO_LONG`
 * 3. an optional `scheme://` that must be the expected one → `VFS_SCHEME_UNKNOWN`;
 *    after a scheme the path is root-relative, a leading `/` is `VFS_PATH_INVALID`
 * 4. no `..` segment anywhere, even one that would stay inside the root → `VFS_PATH_ESCAPE`
 *    (checked before any prefix comparison)
 * 5. every component at most 255 UTF-8 bytes → `VFS_NAME_TOO_LONG`
 * 6. an absolute path must lie inside one of the root's absolute spellings and is made
 *    relative → else `VFS_PATH_ESCAPE`
 *
 * Empty and `.` segments are dropped; the root is `""`. Symlinks are the other half:
 * `resolve_vfs_path.ts`.
 *
 * @module
 */
import { quotePath, VfsCode, VfsError } from "./errors.ts";

/** The limits path resolution enforces. */
export const VFS_LIMITS = {
  /** Longest path, in UTF-8 bytes (Linux `PATH_MAX`). */
  maxPathBytes: 4096,
  /** Longest path component, in UTF-8 bytes (Linux `NAME_MAX`). */
  maxNameBytes: 255,
  /** Most symlinks followed while resolving one path (Linux `MAXSYMLINKS`). */
  maxSymlinkHops: 40,
} as const;

/** Options of {@link canonicalize}. */
export interface CanonicalizeOptions {
  /** The scheme the path may carry (`workspace`); a path with any other scheme is rejected. */
  scheme?: string;
  /** Absolute host spellings of the root; an absolute path under one of them is accepted. */
  roots?: readonly string[];
}

const SCHEME_RE = /^([a-z][a-z0-9+.-]*):\/\//;

/** Splits `scheme://rest`; `scheme` is null for a plain path. No validation beyond the form. */
export function parseVfsUri(path: string): { scheme: string | null; rest: string } {
  const match = SCHEME_RE.exec(path);
  if (match === null) return { scheme: null, rest: path };
  return { scheme: match[1], rest: path.slice(match[0].length) };
}

/** The UTF-8 byte length of a well-formed string, without encoding it. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Returns the canonical root-relative form of `path` (`""` for the root) by the lexical rules
 * above, or throws the {@link VfsError} of the first rule it breaks. Touches no filesystem.
 */
export function canonicalize(path: string, options: CanonicalizeOptions = {}): string {
  const rest = checkText(path, options.scheme);
  const segments = rest.split("/");
  checkSegments(path, segments);
  if (rest.startsWith("/")) return relativeToRoots(path, segments, options.roots ?? []);
  return segments.filter((s) => s !== "" && s !== ".").join("/");
}

/** Rules 1–3: text, length and scheme; returns the part after the scheme. */
function checkText(path: string, scheme: string | undefined): string {
  if (typeof path !== "string") {
    throw new VfsError(VfsCode.VFS_PATH_INVALID, `Path must be a string: got ${typeof path}`, {
      data: { reason: "not-a-string" },
    });
  }
  if (path.includes("\0")) {
    throw new VfsError(
      VfsCode.VFS_PATH_INVALID,
      `Path ${quotePath(path)} is invalid: it contains a NUL byte`,
      {
        data: { path: clip(path), reason: "nul" },
      },
    );
  }
  if (!path.isWellFormed()) {
    throw new VfsError(
      VfsCode.VFS_PATH_INVALID,
      `Path ${quotePath(path)} is invalid: it contains an unpaired UTF-16 surrogate`,
      { data: { path: clip(path), reason: "surrogate" } },
    );
  }
  const length = utf8Length(path);
  if (length > VFS_LIMITS.maxPathBytes) {
    throw new VfsError(
      VfsCode.VFS_PATH_TOO_LONG,
      `Path ${quotePath(path)} is too long: ${length} bytes (limit ${VFS_LIMITS.maxPathBytes})`,
      { data: { path: clip(path), length, limit: VFS_LIMITS.maxPathBytes } },
    );
  }
  const parsed = parseVfsUri(path);
  if (parsed.scheme === null) return path;
  if (parsed.scheme !== scheme) {
    throw new VfsError(
      VfsCode.VFS_SCHEME_UNKNOWN,
      scheme === undefined
        ? `Path ${quotePath(path)} has a scheme "${parsed.scheme}" where none is served`
        : `Path ${
          quotePath(path)
        } has scheme "${parsed.scheme}": this filesystem serves "${scheme}://"`,
      { data: { path: clip(path), scheme: parsed.scheme } },
    );
  }
  if (parsed.rest.startsWith("/")) {
    throw new VfsError(
      VfsCode.VFS_PATH_INVALID,
      `Path ${
        quotePath(path)
      } is invalid: after "${scheme}://" the path is relative to the root; drop the leading "/"`,
      { data: { path: clip(path), reason: "absolute-after-scheme" } },
    );
  }
  return parsed.rest;
}

/** Rules 4–5: no `..` anywhere (before any prefix check), components within the limit. */
function checkSegments(path: string, segments: readonly string[]): void {
  if (segments.includes("..")) {
    throw new VfsError(
      VfsCode.VFS_PATH_ESCAPE,
      `Path ${quotePath(path)} escapes the root: ".." segments are not allowed`,
      { data: { path: clip(path), reason: "dotdot" } },
    );
  }
  for (const segment of segments) {
    if (segment.length * 3 <= VFS_LIMITS.maxNameBytes) continue; // ≤ 3 bytes per UTF-16 unit
    const length = utf8Length(segment);
    if (length > VFS_LIMITS.maxNameBytes) {
      throw new VfsError(
        VfsCode.VFS_NAME_TOO_LONG,
        `Path ${
          quotePath(path)
        } has a component of ${length} bytes (limit ${VFS_LIMITS.maxNameBytes}): ${
          quotePath(segment)
        }`,
        {
          data: {
            path: clip(path),
            name: clip(segment, 300),
            length,
            limit: VFS_LIMITS.maxNameBytes,
          },
        },
      );
    }
  }
}

/** Rule 6: an absolute path inside one of `roots`, made relative. */
function relativeToRoots(
  path: string,
  segments: readonly string[],
  roots: readonly string[],
): string {
  const parts = segments.filter((s) => s !== "" && s !== ".");
  for (const root of roots) {
    const rootParts = root.split("/").filter((s) => s !== "" && s !== ".");
    if (rootParts.length > parts.length) continue;
    if (rootParts.every((part, i) => parts[i] === part)) {
      return parts.slice(rootParts.length).join("/");
    }
  }
  throw new VfsError(
    VfsCode.VFS_PATH_ESCAPE,
    `Path ${quotePath(path)} escapes the root: an absolute path must lie inside the root`,
    { data: { path: clip(path), reason: "outside-root" } },
  );
}

/** Cuts a value kept in `data` so a hostile 10,000-character path is not copied around whole. */
function clip(text: string, max: number = VFS_LIMITS.maxPathBytes): string {
  return text.length > max ? text.slice(0, max) : text;
}
