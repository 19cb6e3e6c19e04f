/**
 * `OverlayVfs`: the copy-on-write view of a workspace that one session of one principal
 * works in. The workspace is the read-only lower layer; every write, delete, mkdir and
 * rename lands in the session's upper dir (overlayfs on-disk format, so a kernel overlayfs
 * can stack it under a native subprocess). Reads see upper over lower. The human then
 * {@link OverlayVfs.diff diffs}, {@link OverlayVfs.commit commits} or
 * {@link OverlayVfs.discard discards}. See `docs/vfs.md`.
 *
 * @example
 * ```ts
 * import { OverlayVfs } from "./mod.ts";
 *
 * const workspace = await Deno.makeTempDir();
 * const session = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${workspace}/a.txt`, "one\n");
 * const vfs = await OverlayVfs.open(workspace, session);
 * await vfs.writeFile("workspace://a.txt", "two\n");
 * if (await Deno.readTextFile(`${workspace}/a.txt`) !== "one\n") throw new Error("leaked");
 * const [change] = await vfs.diff();
 * if (change.path !== "a.txt" || change.change !== "modified") throw new Error("diff");
 * const { applied } = await vfs.commit();
 * if (applied[0] !== "a.txt" || await Deno.readTextFile(`${workspace}/a.txt`) !== "two\n") {
 *   throw new Error("commit");
 * }
 * vfs.close();
 * await Deno.remove(workspace, { recursive: true });
 * await Deno.remove(session, { recursive: true });
 * ```
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { canonicalize } from "./canonicalize.ts";
import { quotePath, VfsCode, VfsError } from "./errors.ts";
import { stampOf } from "./lower_base.ts";
import { checkFile, checkSize, statOf } from "./host_vfs.ts";
import { mapFsError, vfsError } from "./_map_error.ts";
import { OverlayCore } from "./_overlay_core.ts";
import { hasLowerDir, type OverlayNode } from "./_overlay_layer.ts";
import { makeDir, moveEntry, removeEntry, writeBytes } from "./_overlay_ops.ts";
import { type CommitOptions, commitOverlay, type CommitResult } from "./overlay_commit.ts";
import { type DiffOptions, diffOverlay, type VfsChange } from "./overlay_diff.ts";
import { type FoldResult, foldUpperInto } from "./fold_upper.ts";
import type { Walked } from "./resolve_vfs_path.ts";
import type { SessionLock } from "./session_lock.ts";
import type {
  MkdirOptions,
  ReadFileOptions,
  ResolvedVfsPath,
  ResolveOptions,
  RmdirOptions,
  Vfs,
  VfsEntry,
  VfsStat,
  WriteFileOptions,
} from "./vfs.ts";
import { WHITEOUT_MARKER_PREFIX, type WhiteoutFormat } from "./whiteout.ts";

/** Options of {@link OverlayVfs.open}. */
export interface OverlayVfsOptions {
  /** The scheme paths may carry and errors name (default `workspace`). */
  scheme?: string;
  /** The kernel's clock (stamps the sidecar's `created_at`). */
  clock?: Clock;
  /** Force the whiteout format (default: `chardev` where mknod works, else `marker`). */
  whiteout?: WhiteoutFormat;
}

type Where = { path: string; op: string };

const encoder = new TextEncoder();

/** A session's copy-on-write view of a workspace. */
export class OverlayVfs implements Vfs {
  /** The scheme this filesystem answers to. */
  readonly scheme: string;
  #core: OverlayCore;
  #closed = false;

  private constructor(core: OverlayCore, scheme: string) {
    this.#core = core;
    this.scheme = scheme;
  }

  /**
   * Opens the overlay of the workspace `lower` kept in `sessionDir` (created if missing:
   * `upper/`, `staging/`, `state.json`). Reopening a directory sees the state it holds; within
   * one process, every OverlayVfs of one directory shares its state and lock.
   */
  static async open(
    lower: string,
    sessionDir: string,
    options: OverlayVfsOptions = {},
  ): Promise<OverlayVfs> {
    const core = await OverlayCore.acquire(lower, sessionDir, options);
    return new OverlayVfs(core, options.scheme ?? "workspace");
  }

  /** Real host path of the workspace (the lower layer). */
  get lowerRoot(): string {
    return this.#core.layer.lowerBase;
  }

  /** Real host path of the upper dir (`<session>/upper`). */
  get upperDir(): string {
    return this.#core.layer.upperBase;
  }

  /** Real host path of the session directory. */
  get sessionDir(): string {
    return this.#core.sessionDir;
  }

  /** How this overlay writes whiteouts; only `chardev` can be a kernel overlayfs layer. */
  get whiteoutFormat(): WhiteoutFormat {
    return this.#core.format;
  }

  /** The session's exclusive lock (shared by every OverlayVfs of this session dir). */
  get lock(): SessionLock {
    return this.#core.lock;
  }

  /**
   * Runs `fn` holding the session's exclusive lock: overlay writes, commit, discard and fold
   * from elsewhere wait until it returns; calls made inside `fn` do not. A native subprocess
   * runs inside it, then its upper dir is folded before the lock is released.
   */
  withExclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.#core.mutate(fn);
  }

  /** Resolves `path` in the merged view. */
  // deno-lint-ignore require-await
  async resolve(path: string, options: ResolveOptions = {}): Promise<ResolvedVfsPath> {
    const w = this.#walk(path, options.followFinal ?? true);
    return { path: w.path, kind: w.node?.kind ?? null };
  }

  /** True when `path` exists in the merged view (following symlinks). */
  // deno-lint-ignore require-await
  async exists(path: string): Promise<boolean> {
    return this.#walk(path, true).node !== null;
  }

  /** Reads a file: the upper version when there is one, else the workspace's. */
  async readFile(path: string, options: ReadFileOptions = {}): Promise<Uint8Array> {
    const w = this.#walk(path, true);
    const where = this.#where(w.path, "read");
    const node = this.#existing(w, where);
    checkFile(node.kind, where);
    const info = node.upper ?? node.lower!;
    if (options.maxBytes !== undefined) {
      checkSize(where, { size: info.size, limit: options.maxBytes });
    }
    const { layer } = this.#core;
    const host = node.upper !== null ? layer.upperPath(w.path) : layer.lowerPath(w.path);
    if (node.upper === null) this.#core.seen.set(w.path, stampOf(info));
    try {
      const bytes = await Deno.readFile(host);
      if (options.maxBytes !== undefined) {
        checkSize(where, { size: bytes.length, limit: options.maxBytes });
      }
      return bytes;
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Writes a file into the upper layer (a workspace file keeps its mode). */
  writeFile(
    path: string,
    data: Uint8Array | string,
    options: WriteFileOptions = {},
  ): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    return this.#core.mutate(async () => {
      const w = this.#walk(path, true);
      const where = this.#where(w.path, "write");
      this.#parent(w, where);
      if (w.node !== null) {
        if (options.createNew) throw vfsError(VfsCode.VFS_EXISTS, where, "it already exists");
        checkFile(w.node.kind, where);
      }
      try {
        await writeBytes(this.#core, w, { bytes, mode: options.mode ?? 0o644 });
      } catch (err) {
        throw mapFsError(err, where);
      }
    });
  }

  /** Creates a directory in the upper layer. */
  mkdir(path: string, options: MkdirOptions = {}): Promise<void> {
    return this.#core.mutate(async () => {
      if (!options.recursive) {
        const w = this.#walk(path, false);
        const where = this.#where(w.path, "create directory");
        if (w.node !== null) throw vfsError(VfsCode.VFS_EXISTS, where, "it already exists");
        this.#parent(w, where);
        return await this.#mkdirAt(w, where);
      }
      const lexical = this.#lexical(path);
      const segments = lexical === "" ? [] : lexical.split("/");
      for (let i = 1; i <= segments.length; i++) {
        const w = this.#walk(segments.slice(0, i).join("/"), true);
        const where = this.#where(w.path, "create directory");
        if (w.node !== null) {
          if (w.node.kind !== "dir") {
            throw vfsError(VfsCode.VFS_NOT_A_DIRECTORY, where, "it exists and is not a directory");
          }
          continue;
        }
        this.#parent(w, where);
        await this.#mkdirAt(w, where);
      }
    });
  }

  async #mkdirAt(w: Walked<OverlayNode>, where: Where): Promise<void> {
    try {
      await makeDir(this.#core, w);
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Lists a directory of the merged view. */
  async readdir(path: string): Promise<VfsEntry[]> {
    const w = this.#walk(path, true);
    const where = this.#where(w.path, "list");
    const node = this.#existing(w, where);
    if (node.kind !== "dir") {
      throw vfsError(VfsCode.VFS_NOT_A_DIRECTORY, where, "it is not a directory");
    }
    try {
      return await this.#core.readdirMerged(w.path, node);
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Kind, size and mtime in the merged view (following symlinks). */
  // deno-lint-ignore require-await
  async stat(path: string): Promise<VfsStat> {
    const w = this.#walk(path, true);
    const node = this.#existing(w, this.#where(w.path, "stat"));
    if (w.path === "") return statOf(Deno.lstatSync(this.#core.layer.upperBase));
    return statOf(node.upper ?? node.lower!);
  }

  /** Deletes a file or symlink: a whiteout when the workspace has it. */
  unlink(path: string): Promise<void> {
    return this.#core.mutate(async () => {
      const w = this.#walk(path, false);
      const where = this.#where(w.path, "remove");
      const node = this.#existing(w, where);
      if (node.kind === "dir") {
        throw vfsError(VfsCode.VFS_IS_A_DIRECTORY, where, "it is a directory (use rmdir)");
      }
      await this.#remove(w, where);
    });
  }

  /** Deletes a directory: one whiteout when the workspace has it. */
  rmdir(path: string, options: RmdirOptions = {}): Promise<void> {
    return this.#core.mutate(async () => {
      const w = this.#walk(path, false);
      const where = this.#where(w.path, "remove directory");
      if (w.path === "") {
        throw vfsError(VfsCode.VFS_PATH_INVALID, where, "the root cannot be removed");
      }
      const node = this.#existing(w, where);
      if (node.kind !== "dir") {
        throw vfsError(VfsCode.VFS_NOT_A_DIRECTORY, where, "it is not a directory");
      }
      if (!options.recursive && (await this.#core.readdirMerged(w.path, node)).length > 0) {
        throw vfsError(VfsCode.VFS_NOT_EMPTY, where, "it is not empty (use recursive)");
      }
      await this.#remove(w, where);
    });
  }

  async #remove(w: Walked<OverlayNode>, where: Where): Promise<void> {
    try {
      await removeEntry(this.#core, w);
    } catch (err) {
      throw mapFsError(err, where);
    }
  }

  /** Moves `from` to `to` in the merged view (workspace entries are copied up). */
  rename(from: string, to: string): Promise<void> {
    return this.#core.mutate(async () => {
      const a = this.#walk(from, false);
      const b = this.#walk(to, false);
      const where = this.#where(a.path, "rename");
      const target = this.#where(b.path, "rename onto");
      if (a.path === "" || b.path === "") {
        throw vfsError(VfsCode.VFS_PATH_INVALID, where, "the root cannot be renamed or replaced");
      }
      const source = this.#existing(a, where);
      this.#parent(b, target);
      if (a.path === b.path) return;
      if (b.path.startsWith(`${a.path}/`)) {
        throw vfsError(VfsCode.VFS_PATH_INVALID, target, "a directory cannot move inside itself");
      }
      if (b.node !== null) {
        if (source.kind === "dir") {
          if (b.node.kind !== "dir") {
            throw vfsError(
              VfsCode.VFS_NOT_A_DIRECTORY,
              target,
              "a directory cannot replace a non-directory",
            );
          }
          if ((await this.#core.readdirMerged(b.path, b.node)).length > 0) {
            throw vfsError(VfsCode.VFS_NOT_EMPTY, target, "it is a directory that is not empty");
          }
        } else if (b.node.kind === "dir") {
          throw vfsError(
            VfsCode.VFS_IS_A_DIRECTORY,
            target,
            "a non-directory cannot replace a directory",
          );
        }
      }
      if (source.kind === "other") {
        throw vfsError(VfsCode.VFS_NOT_A_FILE, where, "it is a device, FIFO or socket");
      }
      try {
        if (source.kind === "dir") await this.#renameDir(a, b);
        else await moveEntry(this.#core, { from: a, to: b });
      } catch (err) {
        throw mapFsError(err, target);
      }
    });
  }

  async #renameDir(a: Walked<OverlayNode>, b: Walked<OverlayNode>): Promise<void> {
    const core = this.#core;
    const { layer } = core;
    const lowerA = core.lowerEntry(a);
    const lowerB = core.lowerEntry(b);
    if (lowerA === null && lowerB === null) {
      // Only in the upper layer on both sides: a plain rename.
      await core.ensureUpperParent(b.path);
      await core.removeUpper(b.path);
      await Deno.rename(layer.upperPath(a.path), layer.upperPath(b.path));
      layer.invalidate();
      return;
    }
    const staged = core.stagingPath();
    await this.#copyMerged(a.path, a.node!, staged);
    if (b.node === null || b.node.upper === null || hasLowerDir(b.node)) {
      await core.touch(b.path, lowerB, { hash: false });
    }
    if (lowerB?.isDirectory) await this.#touchTree(b.path, staged, "");
    await core.state.save();
    await core.ensureUpperParent(b.path);
    await core.removeUpper(b.path);
    await Deno.rename(staged, layer.upperPath(b.path));
    layer.invalidate();
    if (lowerB?.isDirectory) await core.makeOpaque(b.path);
    await removeEntry(core, a);
  }

  /** Records the bases of workspace entries below `to` that the staged tree will hide. */
  async #touchTree(to: string, staged: string, rel: string): Promise<void> {
    for await (const entry of Deno.readDir(rel === "" ? staged : `${staged}/${rel}`)) {
      const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
      const path = `${to}/${childRel}`;
      const lower = this.#core.lowerNow(path);
      if (lower === null) continue;
      await this.#core.touch(path, lower, { hash: false });
      if (entry.isDirectory && lower.isDirectory) await this.#touchTree(to, staged, childRel);
    }
  }

  /** Copies the merged directory `path` to the host directory `dest`. */
  async #copyMerged(path: string, node: OverlayNode, dest: string): Promise<void> {
    const { layer } = this.#core;
    const info = node.upper ?? node.lower!;
    await Deno.mkdir(dest, { mode: info.mode! & 0o7777 });
    for (const entry of await this.#core.readdirMerged(path, node)) {
      const child = `${path}/${entry.name}`;
      const childNode = layer.child(node, child)!;
      const host = childNode.upper !== null ? layer.upperPath(child) : layer.lowerPath(child);
      const target = `${dest}/${entry.name}`;
      const childInfo = childNode.upper ?? childNode.lower!;
      if (childNode.kind === "dir") await this.#copyMerged(child, childNode, target);
      else if (childNode.kind === "symlink") await Deno.symlink(await Deno.readLink(host), target);
      else if (childNode.kind === "file") {
        await Deno.copyFile(host, target);
        await Deno.chmod(target, childInfo.mode! & 0o7777);
      } else {
        throw vfsError(
          VfsCode.VFS_NOT_A_FILE,
          this.#where(child, "rename"),
          "it is a device, FIFO or socket",
        );
      }
    }
  }

  /** The changes of this overlay against the workspace. */
  async diff(options: DiffOptions = {}): Promise<VfsChange[]> {
    return await diffOverlay(this.#core, this.#selection(options.paths), options);
  }

  /** Applies the changes to the workspace; conflicting ones stay in the overlay. */
  async commit(options: CommitOptions = {}): Promise<CommitResult> {
    const selection = this.#selection(options.paths);
    return await this.#core.mutate(() =>
      commitOverlay(this.#core, selection, {
        force: options.force,
        strict: options.strict,
        scheme: this.scheme,
      })
    );
  }

  /** Drops every uncommitted change; the workspace is not touched. */
  discard(): Promise<void> {
    return this.#core.mutate(async () => {
      try {
        await this.#core.reset();
      } catch (err) {
        throw mapFsError(err, { path: this.#core.sessionDir, op: "discard" });
      }
    });
  }

  /**
   * Merges the overlayfs-format upper dir `dir` (a native subprocess's) into this overlay:
   * files copied, whiteouts turned into deletions. `dir` is left as it was.
   */
  foldUpper(dir: string): Promise<FoldResult> {
    return this.#core.mutate(() => foldUpperInto(this.#core, dir));
  }

  /** Releases this handle; the overlay stays on disk for the next {@link OverlayVfs.open}. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#core.release();
  }

  /** Discards the overlay, removes its session directory and closes this handle. */
  async destroy(): Promise<void> {
    await this.#core.mutate(async () => {
      try {
        await Deno.remove(this.#core.sessionDir, { recursive: true });
        this.#core.layer.invalidate({ root: true });
      } catch (err) {
        throw mapFsError(err, { path: this.#core.sessionDir, op: "remove overlay" });
      }
    });
    this.close();
  }

  #lexical(path: string): string {
    const lexical = canonicalize(path, { scheme: this.scheme, roots: this.#core.layer.roots });
    if (this.#core.format === "marker" && lexical !== "") {
      for (const segment of lexical.split("/")) {
        if (!segment.startsWith(WHITEOUT_MARKER_PREFIX)) continue;
        throw new VfsError(
          VfsCode.VFS_PATH_INVALID,
          `Path ${
            quotePath(path)
          } is invalid: names starting "${WHITEOUT_MARKER_PREFIX}" are reserved by this overlay's whiteouts`,
          { data: { path, reason: "reserved-name" } },
        );
      }
    }
    return lexical;
  }

  #walk(path: string, followFinal: boolean): Walked<OverlayNode> {
    return this.#core.walk(this.#lexical(path), { followFinal, display: path });
  }

  #selection(paths: readonly string[] | undefined): string[] | null {
    if (paths === undefined) return null;
    return paths.map((p) => this.#lexical(p));
  }

  #where(canonical: string, op: string): Where {
    return { path: `${this.scheme}://${canonical}`, op };
  }

  #existing(w: Walked<OverlayNode>, where: Where): OverlayNode {
    if (w.node === null) throw vfsError(VfsCode.VFS_NOT_FOUND, where, "it does not exist");
    return w.node;
  }

  #parent(w: Walked<OverlayNode>, where: Where): void {
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
}
