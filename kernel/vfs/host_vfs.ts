/**
 * `HostVfs`: a {@link Vfs} that reads and writes one host directory directly, under the same
 * path rules as the overlay. It serves `home://` (the principal's own directory, with the
 * kernel's `.local/` and `.config/` reserved) and `global://` (read-only unless opened
 * writable), and stands in for the workspace in tests.
 *
 * @module
 */
import { canonicalize } from "./canonicalize.ts";
import { quotePath, VfsCode, VfsError } from "./errors.ts";
import { HostLayer, type HostNode, kindOf } from "./_host_layer.ts";
import { mapFsError, vfsError } from "./_map_error.ts";
import { type Walked, walkPath } from "./resolve_vfs_path.ts";
import type {
  MkdirOptions,
  ReadFileOptions,
  ResolvedVfsPath,
  ResolveOptions,
  RmdirOptions,
  Vfs,
  VfsEntry,
  VfsKind,
  VfsStat,
  WriteFileOptions,
} from "./vfs.ts";

/** Options of {@link HostVfs.open}. */
export interface HostVfsOptions {
  /** The scheme paths may carry and errors name (default `workspace`). */
  scheme?: string;
  /** Refuse every write with `VFS_READ_ONLY`. */
  readOnly?: boolean;
  /** Canonical root-relative paths that do not exist for callers (`VFS_PATH_DENIED`). */
  reserved?: readonly string[];
  /** Create the root directory (0700) when it is missing. */
  create?: boolean;
}

const encoder = new TextEncoder();

/** A {@link Vfs} over one host directory. */
export class HostVfs implements Vfs {
  /** The scheme this filesystem answers to. */
  readonly scheme: string;
  #layer: HostLayer;
  #readOnly: boolean;
  #reserved: readonly string[];

  private constructor(layer: HostLayer, options: HostVfsOptions) {
    this.scheme = options.scheme ?? "workspace";
    this.#layer = layer;
    this.#readOnly = options.readOnly ?? false;
    this.#reserved = options.reserved ?? [];
  }

  /** Opens the directory `root` (which must exist unless `options.create`). */
  static async open(root: string, options: HostVfsOptions = {}): Promise<HostVfs> {
    if (options.create) await Deno.mkdir(root, { recursive: true, mode: 0o700 });
    return new HostVfs(HostLayer.open(root), options);
  }

  /** The real host path of the root. */
  get root(): string {
    return this.#layer.base;
  }

  /** The host path of a canonical root-relative path (after {@link HostVfs.resolve}). */
  hostPath(canonical: string): string {
    return this.#layer.hostPath(canonical);
  }

  /** Resolves `path` to its canonical form. */
  // deno-lint-ignore require-await
  async resolve(path: string, options: ResolveOptions = {}): Promise<ResolvedVfsPath> {
    const walked = this.#walk(path, options.followFinal ?? true);
    return { path: walked.path, kind: walked.node?.kind ?? null };
  }

  /** True when `path` exists (following symlinks). */
  // deno-lint-ignore require-await
  async exists(path: string): Promise<boolean> {
    return this.#walk(path, true).node !== null;
  }

  /** Reads a file. */
  async readFile(path: string, options: ReadFileOptions = {}): Promise<Uint8Array> {
    const w = this.#walk(path, true);
    const where = { path: this.#uri(w.path), op: "read" };
    const node = this.#existing(w, where);
    checkFile(node.kind, where);
    if (options.maxBytes !== undefined) {
      checkSize(where, { size: node.info.size, limit: options.maxBytes });
    }
    try {
      const bytes = await Deno.readFile(this.#layer.hostPath(w.path));
      if (options.maxBytes !== undefined) {
        checkSize(where, { size: bytes.length, limit: options.maxBytes });
      }
      return bytes;
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Writes a file in place (no temp file: `home://`/`global://` hold no overlay). */
  async writeFile(
    path: string,
    data: Uint8Array | string,
    options: WriteFileOptions = {},
  ): Promise<void> {
    const w = this.#walk(path, true);
    const where = { path: this.#uri(w.path), op: "write" };
    this.#writable(where);
    this.#parent(w, where);
    if (w.node !== null) {
      if (options.createNew) throw vfsError(VfsCode.VFS_EXISTS, where, "it already exists");
      checkFile(w.node.kind, where);
    }
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      await Deno.writeFile(this.#layer.hostPath(w.path), bytes, {
        mode: options.mode ?? 0o644,
        createNew: options.createNew ?? false,
      });
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Creates a directory (and its parents with `recursive`). */
  async mkdir(path: string, options: MkdirOptions = {}): Promise<void> {
    if (!options.recursive) {
      const w = this.#walk(path, false);
      const where = { path: this.#uri(w.path), op: "create directory" };
      this.#writable(where);
      if (w.node !== null) throw vfsError(VfsCode.VFS_EXISTS, where, "it already exists");
      this.#parent(w, where);
      return await this.#mkdirOne(w.path, where);
    }
    const lexical = this.#lexical(path);
    const segments = lexical === "" ? [] : lexical.split("/");
    this.#writable({ path: this.#uri(lexical), op: "create directory" });
    for (let i = 1; i <= segments.length; i++) {
      const w = this.#walk(segments.slice(0, i).join("/"), true);
      const where = { path: this.#uri(w.path), op: "create directory" };
      if (w.node !== null) {
        if (w.node.kind !== "dir") {
          throw vfsError(VfsCode.VFS_NOT_A_DIRECTORY, where, "it exists and is not a directory");
        }
        continue;
      }
      this.#parent(w, where);
      await this.#mkdirOne(w.path, where);
    }
  }

  async #mkdirOne(canonical: string, where: { path: string; op: string }): Promise<void> {
    try {
      await Deno.mkdir(this.#layer.hostPath(canonical), { mode: 0o755 });
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Lists a directory, sorted by name, reserved entries left out. */
  async readdir(path: string): Promise<VfsEntry[]> {
    const w = this.#walk(path, true);
    const where = { path: this.#uri(w.path), op: "list" };
    const node = this.#existing(w, where);
    if (node.kind !== "dir") {
      throw vfsError(VfsCode.VFS_NOT_A_DIRECTORY, where, "it is not a directory");
    }
    const entries: VfsEntry[] = [];
    try {
      for await (const entry of Deno.readDir(this.#layer.hostPath(w.path))) {
        const child = w.path === "" ? entry.name : `${w.path}/${entry.name}`;
        if (this.#isReserved(child)) continue;
        entries.push({ name: entry.name, kind: direntKind(entry) });
      }
    } catch (err) {
      throw mapFsError(err, where);
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Kind, size and mtime (following symlinks). */
  // deno-lint-ignore require-await
  async stat(path: string): Promise<VfsStat> {
    const w = this.#walk(path, true);
    const node = this.#existing(w, { path: this.#uri(w.path), op: "stat" });
    return statOf(this.#layer.fresh(node, w.path).info);
  }

  /** Removes a file or symlink. */
  async unlink(path: string): Promise<void> {
    const w = this.#walk(path, false);
    const where = { path: this.#uri(w.path), op: "remove" };
    this.#writable(where);
    const node = this.#existing(w, where);
    if (node.kind === "dir") {
      throw vfsError(VfsCode.VFS_IS_A_DIRECTORY, where, "it is a directory (use rmdir)");
    }
    try {
      await Deno.remove(this.#layer.hostPath(w.path));
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Removes a directory. */
  async rmdir(path: string, options: RmdirOptions = {}): Promise<void> {
    const w = this.#walk(path, false);
    const where = { path: this.#uri(w.path), op: "remove directory" };
    this.#writable(where);
    if (w.path === "") {
      throw vfsError(VfsCode.VFS_PATH_INVALID, where, "the root cannot be removed");
    }
    const node = this.#existing(w, where);
    if (node.kind !== "dir") {
      throw vfsError(VfsCode.VFS_NOT_A_DIRECTORY, where, "it is not a directory");
    }
    this.#notCoveringReserved(w.path, where);
    try {
      await Deno.remove(this.#layer.hostPath(w.path), { recursive: options.recursive ?? false });
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Moves `from` to `to`. */
  async rename(from: string, to: string): Promise<void> {
    const a = this.#walk(from, false);
    const b = this.#walk(to, false);
    const where = { path: this.#uri(a.path), op: "rename" };
    this.#writable(where);
    const target = { path: this.#uri(b.path), op: "rename onto" };
    if (a.path === "" || b.path === "") {
      throw vfsError(VfsCode.VFS_PATH_INVALID, where, "the root cannot be renamed or replaced");
    }
    this.#existing(a, where);
    this.#parent(b, target);
    if (a.path === b.path) return;
    if (b.path.startsWith(`${a.path}/`)) {
      throw vfsError(VfsCode.VFS_PATH_INVALID, target, "a directory cannot move inside itself");
    }
    this.#notCoveringReserved(a.path, where);
    this.#notCoveringReserved(b.path, target);
    try {
      await Deno.rename(this.#layer.hostPath(a.path), this.#layer.hostPath(b.path));
    } catch (err) {
      throw mapFsError(err, target);
    }
  }

  #lexical(path: string): string {
    const lexical = canonicalize(path, { scheme: this.scheme, roots: this.#layer.roots });
    this.#deny(lexical, path);
    return lexical;
  }

  #walk(path: string, followFinal: boolean): Walked<HostNode> {
    const walked = walkPath(this.#lexical(path), this.#layer, { followFinal, display: path });
    this.#deny(walked.path, path);
    return walked;
  }

  #isReserved(canonical: string): boolean {
    return this.#reserved.some((r) => canonical === r || canonical.startsWith(`${r}/`));
  }

  #deny(canonical: string, input: string): void {
    if (!this.#isReserved(canonical)) return;
    throw new VfsError(
      VfsCode.VFS_PATH_DENIED,
      `Path ${quotePath(input)} is reserved by the kernel: ${this.scheme}:// gives no access to ${
        quotePath(canonical)
      }`,
      { data: { path: input } },
    );
  }

  #notCoveringReserved(canonical: string, where: { path: string; op: string }): void {
    if (this.#reserved.some((r) => r.startsWith(`${canonical}/`))) {
      throw vfsError(VfsCode.VFS_PATH_DENIED, where, "it holds a path reserved by the kernel");
    }
  }

  #writable(where: { path: string; op: string }): void {
    if (!this.#readOnly) return;
    throw new VfsError(
      VfsCode.VFS_READ_ONLY,
      `Cannot ${where.op} ${quotePath(where.path)}: ${this.scheme}:// is read-only`,
      { data: { path: where.path, scheme: this.scheme } },
    );
  }

  #existing(w: Walked<HostNode>, where: { path: string; op: string }): HostNode {
    if (w.node === null) throw vfsError(VfsCode.VFS_NOT_FOUND, where, "it does not exist");
    return w.node;
  }

  #parent(w: Walked<HostNode>, where: { path: string; op: string }): void {
    if (w.path === "") {
      throw vfsError(VfsCode.VFS_IS_A_DIRECTORY, where, "it is the root directory");
    }
    if (w.blocked === "missing") {
      throw vfsError(VfsCode.VFS_NOT_FOUND, where, "its parent directory does not exist");
    }
    if (w.blocked === "notdir") {
      throw vfsError(VfsCode.VFS_NOT_A_DIRECTORY, where, "a parent on the path is not a directory");
    }
  }

  #uri(canonical: string): string {
    return `${this.scheme}://${canonical}`;
  }
}

/** Throws unless `kind` is a regular file. */
export function checkFile(kind: VfsKind, where: { path: string; op: string }): void {
  if (kind === "dir") throw vfsError(VfsCode.VFS_IS_A_DIRECTORY, where, "it is a directory");
  if (kind !== "file") {
    throw vfsError(VfsCode.VFS_NOT_A_FILE, where, "it is a device, FIFO or socket");
  }
}

/** Throws `VFS_TOO_LARGE` when `size` exceeds `limit`. */
export function checkSize(
  where: { path: string; op: string },
  measured: { size: number; limit: number },
): void {
  const { size, limit } = measured;
  if (size <= limit) return;
  throw new VfsError(
    VfsCode.VFS_TOO_LARGE,
    `Cannot ${where.op} ${quotePath(where.path)}: ${size} bytes (limit ${limit})`,
    { data: { path: where.path, size, limit } },
  );
}

/** The {@link VfsStat} of an `lstat` (of a non-symlink). */
export function statOf(info: Deno.FileInfo): VfsStat {
  return { kind: kindOf(info), size: info.size, mtime: info.mtime?.getTime() ?? null };
}

/** The kind of a directory entry. */
export function direntKind(entry: Deno.DirEntry): VfsKind {
  if (entry.isFile) return "file";
  if (entry.isDirectory) return "dir";
  if (entry.isSymlink) return "symlink";
  return "other";
}
