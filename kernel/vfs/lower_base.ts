/**
 * What the overlay remembers of a workspace entry when it first shadows it (its *base*), and
 * how commit tells whether the workspace changed since: a file by BLAKE3 of its bytes (or, if
 * the overlay only saw it on a read that no longer matches, by size + mtime + inode), a
 * directory by a fingerprint of its whole tree, a symlink by its target, a missing entry by
 * its absence. A base is recorded before the upper layer changes, in the sidecar
 * `state.json`; a path with no base recorded is expected to be absent.
 *
 * @module
 */
import { blake3File, Blake3Hasher, toHex } from "../crypto/mod.ts";
import { lstatOrNull } from "./_host_layer.ts";

/** A size + mtime + inode stamp of a file, as `lstat` gives it. */
export interface FileStamp {
  /** Size in bytes. */
  size: number;
  /** Modification time, ms since the epoch, or null. */
  mtime: number | null;
  /** Inode number, or null where the system has none. */
  ino: number | null;
}

/** A workspace entry as the overlay last knew it, or as commit finds it now. */
export type LowerBase =
  | { kind: "absent" }
  | ({ kind: "file"; hash?: string } & FileStamp)
  | { kind: "dir"; tree: string }
  | { kind: "symlink"; target: string }
  | ({ kind: "other" } & FileStamp);

/** The base of a path that did not exist. */
export const ABSENT: LowerBase = { kind: "absent" };

/** The stamp of an `lstat`. */
export function stampOf(info: Deno.FileInfo): FileStamp {
  return { size: info.size, mtime: info.mtime?.getTime() ?? null, ino: info.ino };
}

/** True when two stamps are equal. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtime === b.mtime && a.ino === b.ino;
}

/** Options of {@link captureBase}. */
export interface CaptureOptions {
  /** `lstat` of the entry, null when absent. */
  info: Deno.FileInfo | null;
  /** The file's stamp when the overlay last read it. */
  seen?: FileStamp;
  /** Hash a file's bytes (default true); deletions keep only the stamp. */
  hash?: boolean;
}

/**
 * Captures the base of the entry at host path `path` (whose `lstat` is `options.info`). If the file
 * changed since the overlay last read it (`options.seen`), the base is that older stamp
 * without a hash, so commit reports the change as a conflict.
 */
export async function captureBase(path: string, options: CaptureOptions): Promise<LowerBase> {
  const { info } = options;
  if (info === null) return ABSENT;
  if (info.isFile) {
    const stamp = stampOf(info);
    const seen = options.seen;
    if (seen !== undefined && !sameStamp(seen, stamp)) return { kind: "file", ...seen };
    if (options.hash === false) return { kind: "file", ...stamp };
    return { kind: "file", ...stamp, hash: await blake3File(path) };
  }
  if (info.isDirectory) return { kind: "dir", tree: await treeFingerprint(path) };
  if (info.isSymlink) return { kind: "symlink", target: await Deno.readLink(path) };
  return { kind: "other", ...stampOf(info) };
}

/**
 * Compares the entry at host path `path` (`info` its `lstat`, null when absent) with
 * `expected`. Returns null when it still matches, else what was found.
 */
export async function compareBase(
  path: string,
  against: { info: Deno.FileInfo | null; expected: LowerBase },
): Promise<LowerBase | null> {
  const { info, expected } = against;
  if (info === null) return expected.kind === "absent" ? null : ABSENT;
  if (expected.kind === "file" && info.isFile) {
    const stamp = stampOf(info);
    if (expected.hash !== undefined) {
      const hash = await blake3File(path);
      return hash === expected.hash ? null : { kind: "file", ...stamp, hash };
    }
    return sameStamp(expected, stamp) ? null : { kind: "file", ...stamp };
  }
  const found = await captureBase(path, { info });
  if (found.kind !== expected.kind) return found;
  if (found.kind === "dir" && expected.kind === "dir") {
    return found.tree === expected.tree ? null : found;
  }
  if (found.kind === "symlink" && expected.kind === "symlink") {
    return found.target === expected.target ? null : found;
  }
  if (found.kind === "other" && expected.kind === "other") {
    return sameStamp(found, expected) ? null : found;
  }
  return found;
}

/** One line of a readable description of a base: `file 12 bytes blake3:ab12…`, `absent`. */
export function describeBase(base: LowerBase): string {
  switch (base.kind) {
    case "absent":
      return "absent";
    case "file":
      return `file of ${base.size} bytes${
        base.hash !== undefined ? ` blake3:${base.hash.slice(0, 16)}` : ""
      }, mtime ${base.mtime ?? "unknown"}`;
    case "dir":
      return `directory (tree blake3:${base.tree.slice(0, 16)})`;
    case "symlink":
      return `symlink -> ${JSON.stringify(base.target)}`;
    case "other":
      return `special file, mtime ${base.mtime ?? "unknown"}`;
  }
}

/**
 * A BLAKE3 fingerprint (hex) of the tree at host path `dir`: every entry's relative path and
 * kind, with size, mtime and inode for files and the target for symlinks. Symlinks are not
 * followed.
 */
export async function treeFingerprint(dir: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (host: string, rel: string): Promise<void> => {
    const names: string[] = [];
    for await (const entry of Deno.readDir(host)) names.push(entry.name);
    names.sort();
    for (const name of names) {
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const childHost = `${host}/${name}`;
      const info = lstatOrNull(childHost);
      if (info === null) continue;
      if (info.isDirectory) {
        lines.push(`${childRel}\0dir`);
        await walk(childHost, childRel);
      } else if (info.isSymlink) {
        lines.push(`${childRel}\0symlink\0${await Deno.readLink(childHost)}`);
      } else {
        const s = stampOf(info);
        lines.push(
          `${childRel}\0${info.isFile ? "file" : "other"}\0${s.size}\0${s.mtime}\0${s.ino}`,
        );
      }
    }
  };
  await walk(dir, "");
  const hasher = await Blake3Hasher.create();
  for (const line of lines) hasher.update(`${line}\n`);
  return toHex(hasher.digest());
}

/** Parses a base read back from the sidecar; null when malformed. */
export function parseBase(value: unknown): LowerBase | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  const stamp = () =>
    typeof v.size === "number" &&
    (typeof v.mtime === "number" || v.mtime === null) &&
    (typeof v.ino === "number" || v.ino === null);
  switch (v.kind) {
    case "absent":
      return ABSENT;
    case "file":
      if (!stamp() || (v.hash !== undefined && typeof v.hash !== "string")) return null;
      return v as unknown as LowerBase;
    case "dir":
      return typeof v.tree === "string" ? { kind: "dir", tree: v.tree } : null;
    case "symlink":
      return typeof v.target === "string" ? { kind: "symlink", target: v.target } : null;
    case "other":
      return stamp() ? (v as unknown as LowerBase) : null;
    default:
      return null;
  }
}
