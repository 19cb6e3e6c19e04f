/**
 * The `Vfs` interface: what the host ABI's `fs_*` calls, the security layer and the CLI's
 * `astrid diff` need from a filesystem. Paths are VFS paths: relative to the filesystem's
 * root (`src/a.ts`), with its scheme (`workspace://src/a.ts`), or absolute inside the root.
 * Every path passes {@link resolveVfsPath} first; see `docs/vfs.md` for the rules.
 *
 * @example
 * ```ts
 * import { HostVfs } from "./mod.ts";
 *
 * const root = await Deno.makeTempDir();
 * const vfs = await HostVfs.open(root, { scheme: "workspace" });
 * await vfs.mkdir("src");
 * await vfs.writeFile("workspace://src/a.txt", "hello");
 * const entries = await vfs.readdir("src");
 * if (entries[0].name !== "a.txt" || entries[0].kind !== "file") throw new Error("readdir");
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */

/** What a path names: a regular file, a directory, a symlink, or anything else (device, FIFO). */
export type VfsKind = "file" | "dir" | "symlink" | "other";

/** One entry of {@link Vfs.readdir}. */
export interface VfsEntry {
  /** The entry's name (one path component). */
  name: string;
  /** The entry's own kind; a symlink is reported as `symlink`, not followed. */
  kind: VfsKind;
}

/** What {@link Vfs.stat} returns (symlinks followed). */
export interface VfsStat {
  /** `file`, `dir` or `other` (never `symlink`: stat follows links). */
  kind: VfsKind;
  /** Size in bytes (0 for directories on some filesystems). */
  size: number;
  /** Last modification, milliseconds since the Unix epoch, or null when unknown. */
  mtime: number | null;
}

/** A path after resolution: canonical, root-relative, symlink-free. */
export interface ResolvedVfsPath {
  /** Root-relative canonical path, `""` for the root, `/`-separated, no `.`/`..`/symlinks. */
  path: string;
  /** What the path names after resolution, or null when it does not exist. */
  kind: VfsKind | null;
}

/** Options of {@link Vfs.resolve}. */
export interface ResolveOptions {
  /** Follow a symlink in the final component (default true; false for unlink/rename). */
  followFinal?: boolean;
}

/** Options of {@link Vfs.readFile}. */
export interface ReadFileOptions {
  /** Refuse (`VFS_TOO_LARGE`) a file larger than this many bytes, before reading it. */
  maxBytes?: number;
}

/** Options of {@link Vfs.writeFile}. */
export interface WriteFileOptions {
  /** Fail with `VFS_EXISTS` when the path exists. */
  createNew?: boolean;
  /** Mode of a newly created file (default 0o644; an existing file keeps its mode). */
  mode?: number;
}

/** Options of {@link Vfs.mkdir}. */
export interface MkdirOptions {
  /** Create missing parents and accept an existing directory. */
  recursive?: boolean;
}

/** Options of {@link Vfs.rmdir}. */
export interface RmdirOptions {
  /** Remove the directory's contents too. */
  recursive?: boolean;
}

/** A filesystem the kernel serves to capsules and frontends. All methods are async. */
export interface Vfs {
  /** The scheme this filesystem answers to (`workspace`, `home`, `global`). */
  readonly scheme: string;
  /** Resolves `path` to its canonical root-relative form, following symlinks inside the root. */
  resolve(path: string, options?: ResolveOptions): Promise<ResolvedVfsPath>;
  /** True when `path` exists (following symlinks); hostile paths still throw. */
  exists(path: string): Promise<boolean>;
  /** The bytes of the file at `path`. */
  readFile(path: string, options?: ReadFileOptions): Promise<Uint8Array>;
  /** Replaces (or creates) the file at `path`; its parent must exist. */
  writeFile(path: string, data: Uint8Array | string, options?: WriteFileOptions): Promise<void>;
  /** Creates a directory. */
  mkdir(path: string, options?: MkdirOptions): Promise<void>;
  /** The entries of a directory, sorted by name. */
  readdir(path: string): Promise<VfsEntry[]>;
  /** Kind, size and mtime of `path` (following symlinks). */
  stat(path: string): Promise<VfsStat>;
  /** Removes a file or symlink (not followed); directories need {@link Vfs.rmdir}. */
  unlink(path: string): Promise<void>;
  /** Removes a directory; non-empty ones only with `recursive`. */
  rmdir(path: string, options?: RmdirOptions): Promise<void>;
  /** Moves `from` to `to` (neither final component followed); replaces a file or empty dir. */
  rename(from: string, to: string): Promise<void>;
}
