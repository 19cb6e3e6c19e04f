/**
 * The overlay's moving parts on canonical paths: the session directory (`upper/`,
 * `staging/`, `state.json`), the merged lookups, base recording, and the primitive changes to
 * the upper layer. `OverlayVfs` validates paths and takes the lock, then calls these;
 * diff, commit and fold use them too. Folder-private.
 *
 * Session directory:
 * ```
 * <session>/upper/       overlayfs-format upper layer (files, dirs, symlinks, 0/0 whiteouts)
 * <session>/staging/     temp files renamed into upper/ (same filesystem), emptied on open
 * <session>/state.json   the sidecar (see _overlay_state.ts)
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { type Clock, systemClock } from "../clock.ts";
import { VfsCode, VfsError } from "./errors.ts";
import { kindOf, lstatOrNull } from "./_host_layer.ts";
import { mapFsError } from "./_map_error.ts";
import { hasLowerDir, OverlayLayer, type OverlayNode } from "./_overlay_layer.ts";
import { OverlayState } from "./_overlay_state.ts";
import { captureBase, type FileStamp } from "./lower_base.ts";
import { type Walked, type WalkOptions, walkPath } from "./resolve_vfs_path.ts";
import { SessionLock } from "./session_lock.ts";
import type { VfsEntry, VfsKind } from "./vfs.ts";
import {
  isWhiteoutInfo,
  makeWhiteout,
  probeWhiteoutFormat,
  WHITEOUT_MARKER_PREFIX,
  type WhiteoutFormat,
} from "./whiteout.ts";

/** Options of {@link OverlayCore.open}. */
export interface OverlayCoreOptions {
  /** The kernel's clock (the sidecar's `created_at`). */
  clock?: Clock;
  /** Force a whiteout format (default: probe the session dir; `chardev` on Linux). */
  whiteout?: WhiteoutFormat;
}

const shared = new Map<string, { core: Promise<OverlayCore>; refs: number }>();

/** The shared state of one session overlay (one per session directory per process). */
export class OverlayCore {
  /** The merged view. */
  readonly layer: OverlayLayer;
  /** The sidecar. */
  readonly state: OverlayState;
  /** The session directory. */
  readonly sessionDir: string;
  /** `<session>/staging`: where new upper entries are built before a rename. */
  readonly staging: string;
  /** The session's exclusive lock. */
  readonly lock = new SessionLock();
  /** Stamps of workspace files when this process last read them (not persisted). */
  readonly seen = new Map<string, FileStamp>();
  #counter = 0;

  private constructor(layer: OverlayLayer, state: OverlayState, sessionDir: string) {
    this.layer = layer;
    this.state = state;
    this.sessionDir = sessionDir;
    this.staging = join(sessionDir, "staging");
  }

  /**
   * Opens (creating) the overlay of `lower` in `sessionDir`, or returns the core already open
   * in this process for that directory. Pair with {@link OverlayCore.release}.
   */
  static async acquire(
    lower: string,
    sessionDir: string,
    options: OverlayCoreOptions = {},
  ): Promise<OverlayCore> {
    let lowerReal: string;
    try {
      lowerReal = await Deno.realPath(lower);
      if (!(await Deno.stat(lowerReal)).isDirectory) throw new Deno.errors.NotADirectory(lower);
    } catch (err) {
      throw mapFsError(err, { path: lower, op: "open workspace" });
    }
    try {
      await Deno.mkdir(sessionDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw mapFsError(err, { path: sessionDir, op: "create session directory" });
    }
    const dir = await Deno.realPath(sessionDir);
    let entry = shared.get(dir);
    if (entry === undefined) {
      // Registered before loading, so concurrent opens of one directory share one core.
      const created = { core: OverlayCore.#load(lowerReal, dir, options), refs: 0 };
      shared.set(dir, created);
      created.core.catch(() => {
        if (shared.get(dir) === created) shared.delete(dir);
      });
      entry = created;
    }
    const core = await entry.core;
    if (core.layer.lowerBase !== lowerReal) throw otherWorkspace(dir, core.state.lower);
    entry.refs++;
    return core;
  }

  static async #load(
    lower: string,
    dir: string,
    options: OverlayCoreOptions,
  ): Promise<OverlayCore> {
    const upper = join(dir, "upper");
    const staging = join(dir, "staging");
    const statePath = join(dir, "state.json");
    try {
      await Deno.remove(staging, { recursive: true }).catch(() => {});
      await Deno.mkdir(staging, { mode: 0o700 });
      await Deno.mkdir(upper, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw mapFsError(err, { path: dir, op: "lay out session directory" });
    }
    let state = await OverlayState.load(statePath);
    if (state !== null && state.lower !== lower) throw otherWorkspace(dir, state.lower);
    if (state !== null && options.whiteout !== undefined && options.whiteout !== state.whiteout) {
      throw new VfsError(
        VfsCode.VFS_STATE_INVALID,
        `Overlay state ${
          JSON.stringify(statePath)
        } field "whiteout" is "${state.whiteout}", not the requested "${options.whiteout}": discard the overlay to change formats`,
        { data: { path: statePath, field: "whiteout" } },
      );
    }
    if (state === null) {
      const whiteout = options.whiteout ?? (await probeWhiteoutFormat(staging));
      state = OverlayState.create(statePath, {
        lower,
        whiteout,
        createdAt: (options.clock ?? systemClock).now(),
      });
      await state.save();
    }
    return new OverlayCore(OverlayLayer.open(lower, upper, state.whiteout), state, dir);
  }

  /** Drops one reference taken by {@link OverlayCore.acquire}. */
  release(): void {
    const entry = shared.get(this.sessionDir);
    if (entry === undefined || entry.refs === 0) return;
    if (--entry.refs === 0) shared.delete(this.sessionDir);
  }

  /**
   * Runs the upper-layer change `fn` under the session lock. Every primitive below that
   * changes the upper dir's structure drops the walk's cache itself (an in-place file write
   * does not need to, so reads stay warm); if `fn` throws half-way, the cache is dropped too.
   */
  mutate<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.lock.run(async () => {
      try {
        return await fn();
      } catch (err) {
        this.layer.invalidate();
        throw err;
      }
    });
  }

  /** How whiteouts are written. */
  get format(): WhiteoutFormat {
    return this.layer.format;
  }

  /** Walks the lexically canonical path `lexical` through the merged view. */
  walk(lexical: string, options: WalkOptions): Walked<OverlayNode> {
    return walkPath(lexical, this.layer, options);
  }

  /** A fresh path inside `staging/`. */
  stagingPath(): string {
    return join(this.staging, `${++this.#counter}.${crypto.randomUUID().slice(0, 8)}`);
  }

  /**
   * The workspace entry at canonical `path` as the overlay sees it (visible, or hidden by the
   * upper layer), or null. `node`/`parent` come from the walk that found `path`.
   */
  lowerEntry(w: Pick<Walked<OverlayNode>, "path" | "node" | "parent">): Deno.FileInfo | null {
    const { path, node, parent } = w;
    if (node !== null && node.lower !== null) return node.lower;
    const lowerParent = node !== null ? node.lowerParent : parent !== null && hasLowerDir(parent);
    if (!lowerParent) return null;
    // An absent entry the walk just looked up in both layers: no need to look again.
    if (node === null && this.layer.knownWhiteout(path) === false) return null;
    return lstatOrNull(this.layer.lowerPath(path));
  }

  /** The workspace entry at `path` right now, null when absent or when an ancestor is not a real directory. */
  lowerNow(path: string): Deno.FileInfo | null {
    const segments = path.split("/");
    let host = this.layer.lowerBase;
    for (let i = 0; i < segments.length - 1; i++) {
      host = `${host}/${segments[i]}`;
      if (lstatOrNull(host)?.isDirectory !== true) return null;
    }
    return lstatOrNull(this.layer.lowerPath(path));
  }

  /**
   * Records the base of `path` (whose workspace entry is `lower`) unless one is recorded.
   * Absent entries need no record. Call `state.save()` before changing the upper layer.
   */
  async touch(
    path: string,
    lower: Deno.FileInfo | null,
    options: { hash?: boolean } = {},
  ): Promise<void> {
    if (lower === null || this.state.has(path)) return;
    const base = await captureBase(this.layer.lowerPath(path), {
      info: lower,
      seen: this.seen.get(path),
      hash: options.hash,
    });
    this.state.set(path, base);
  }

  /** Creates the upper directories above `path` that exist only in the workspace so far. */
  async ensureUpperParent(path: string): Promise<void> {
    const segments = path.split("/");
    segments.pop();
    let current = "";
    for (const segment of segments) {
      current = current === "" ? segment : `${current}/${segment}`;
      if (this.layer.isUpperDir(current)) continue;
      const host = this.layer.upperPath(current);
      if (lstatOrNull(host) !== null) await Deno.remove(host); // a stale whiteout under a visible dir
      const lower = lstatOrNull(this.layer.lowerPath(current));
      await Deno.mkdir(host, { mode: lower?.isDirectory ? lower.mode! & 0o7777 : 0o755 });
      this.layer.invalidate();
    }
  }

  /**
   * Writes `bytes` as the upper file of `path`: in place when `upper` (the lstat of the upper
   * entry) is a file, created in place when the upper layer has nothing there, else staged
   * and renamed over what is there (a whiteout, a directory). `exact` applies `mode` whatever
   * the umask (a copied-up workspace file keeps its mode). Like any write to an uncommitted
   * file, a crash in the middle can leave the upper file short; commits are atomic.
   */
  async placeBytes(
    path: string,
    file: { bytes: Uint8Array; mode: number; exact?: boolean; upper: Deno.FileInfo | null },
  ): Promise<void> {
    const { bytes, mode, upper } = file;
    const host = this.layer.upperPath(path);
    if (upper !== null && upper.isFile) {
      await Deno.writeFile(host, bytes);
      return;
    }
    await this.ensureUpperParent(path);
    if (this.format === "chardev") {
      try {
        await Deno.writeFile(host, bytes, { createNew: true, mode });
        if (file.exact) await Deno.chmod(host, mode);
        this.layer.invalidate();
        return;
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
    }
    const tmp = this.stagingPath();
    await Deno.writeFile(tmp, bytes, { createNew: true, mode });
    if (file.exact) await Deno.chmod(tmp, mode);
    await this.install(path, tmp);
  }

  /** Copies the file or symlink at host path `source` to the upper entry of `path`. */
  async placeCopy(path: string, from: { source: string; info: Deno.FileInfo }): Promise<void> {
    const { source, info } = from;
    await this.ensureUpperParent(path);
    const tmp = this.stagingPath();
    if (info.isSymlink) {
      await Deno.symlink(await Deno.readLink(source), tmp);
    } else {
      await Deno.copyFile(source, tmp);
      if (info.mode !== null) await Deno.chmod(tmp, info.mode & 0o7777);
    }
    await this.install(path, tmp);
  }

  /** Renames host path `tmp` (staged, or an upper entry) over the upper entry of `path`. */
  async install(path: string, tmp: string): Promise<void> {
    const host = this.layer.upperPath(path);
    const existing = lstatOrNull(host);
    if (existing !== null && existing.isDirectory) await Deno.remove(host, { recursive: true });
    await Deno.rename(tmp, host);
    if (this.format === "marker") await Deno.remove(this.layer.markerPath(path)).catch(() => {});
    this.layer.invalidate();
  }

  /** Replaces the upper entry of `path` by a whiteout. */
  async placeWhiteout(path: string): Promise<void> {
    try {
      await this.#placeWhiteout(path);
    } finally {
      this.layer.invalidate();
    }
  }

  async #placeWhiteout(path: string): Promise<void> {
    await this.ensureUpperParent(path);
    const host = this.layer.upperPath(path);
    const upper = lstatOrNull(host);
    if (this.format === "marker") {
      if (upper !== null) await Deno.remove(host, { recursive: true });
      if (lstatOrNull(this.layer.markerPath(path)) === null) await makeWhiteout(host, "marker");
      return;
    }
    if (upper !== null && isWhiteoutInfo(upper)) return;
    if (upper === null) return await makeWhiteout(host, "chardev");
    if (upper.isDirectory) {
      await Deno.remove(host, { recursive: true });
      return await makeWhiteout(host, "chardev");
    }
    const tmp = this.stagingPath();
    await makeWhiteout(tmp, "chardev");
    await Deno.rename(tmp, host);
  }

  /** Removes the upper entry of `path` (and its marker) without leaving a whiteout. */
  async removeUpper(path: string): Promise<void> {
    const host = this.layer.upperPath(path);
    if (lstatOrNull(host) !== null) await Deno.remove(host, { recursive: true });
    if (this.format === "marker") await Deno.remove(this.layer.markerPath(path)).catch(() => {});
    this.layer.invalidate();
  }

  /**
   * Makes `path` an empty directory in the merged view, replacing what hides it in the upper
   * layer. Over a workspace directory it writes a whiteout for each workspace entry (no
   * opaque xattr: Deno cannot set one). Records the bases first.
   */
  async mkdirUpper(path: string, lower: Deno.FileInfo | null): Promise<void> {
    await this.ensureUpperParent(path);
    const host = this.layer.upperPath(path);
    if (lower === null || !lower.isDirectory) {
      await this.removeUpper(path);
      await Deno.mkdir(host, { mode: 0o755 });
      this.layer.invalidate();
      return;
    }
    const names = await this.#lowerNames(path);
    for (const name of names) {
      const child = `${path}/${name}`;
      await this.touch(child, lstatOrNull(this.layer.lowerPath(child)), { hash: false });
    }
    await this.state.save();
    const tmp = this.stagingPath();
    await Deno.mkdir(tmp, { mode: lower.mode! & 0o7777 });
    for (const name of names) await makeWhiteout(join(tmp, name), this.format);
    await this.removeUpper(path);
    await Deno.rename(tmp, host);
    this.layer.invalidate();
  }

  /**
   * Hides every workspace entry below the merged directory `path` that the upper directory
   * does not hold, recursing into directories present on both sides: the upper directory then
   * shows exactly its own content, as an opaque overlayfs directory would.
   */
  async makeOpaque(path: string): Promise<void> {
    const pending: string[] = [];
    const visit = async (dir: string): Promise<void> => {
      for (const name of await this.#lowerNames(dir)) {
        const child = `${dir}/${name}`;
        const upper = lstatOrNull(this.layer.upperPath(child));
        if (upper === null) {
          if (this.format === "marker" && lstatOrNull(this.layer.markerPath(child)) !== null) {
            continue;
          }
          await this.touch(child, lstatOrNull(this.layer.lowerPath(child)), { hash: false });
          pending.push(child);
        } else if (upper.isDirectory && lstatOrNull(this.layer.lowerPath(child))?.isDirectory) {
          await visit(child);
        }
      }
    };
    if (lstatOrNull(this.layer.lowerPath(path))?.isDirectory !== true) return;
    await visit(path);
    await this.state.save();
    try {
      for (const child of pending) await makeWhiteout(this.layer.upperPath(child), this.format);
    } finally {
      this.layer.invalidate();
    }
  }

  async #lowerNames(path: string): Promise<string[]> {
    const names: string[] = [];
    for await (const entry of Deno.readDir(this.layer.lowerPath(path))) names.push(entry.name);
    return names.sort();
  }

  /** The merged entries of the directory `node` at `path`, sorted by name. */
  async readdirMerged(path: string, node: OverlayNode): Promise<VfsEntry[]> {
    const kinds = new Map<string, VfsKind>();
    const hidden = new Set<string>();
    if (node.upper !== null && node.upper.isDirectory) {
      const host = this.layer.upperPath(path);
      for await (const entry of Deno.readDir(host)) {
        if (this.format === "marker" && entry.name.startsWith(WHITEOUT_MARKER_PREFIX)) {
          hidden.add(entry.name.slice(WHITEOUT_MARKER_PREFIX.length));
          continue;
        }
        if (entry.isFile || entry.isDirectory || entry.isSymlink) {
          kinds.set(entry.name, entry.isFile ? "file" : entry.isDirectory ? "dir" : "symlink");
          continue;
        }
        const info = lstatOrNull(`${host}/${entry.name}`);
        if (info === null) continue;
        if (isWhiteoutInfo(info)) hidden.add(entry.name);
        else kinds.set(entry.name, kindOf(info));
      }
    }
    if (hasLowerDir(node)) {
      for await (const entry of Deno.readDir(this.layer.lowerPath(path))) {
        if (kinds.has(entry.name) || hidden.has(entry.name)) continue;
        kinds.set(
          entry.name,
          entry.isFile ? "file" : entry.isDirectory ? "dir" : entry.isSymlink ? "symlink" : "other",
        );
      }
    }
    return [...kinds].map(([name, kind]) => ({ name, kind })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
  }

  /** Empties the upper layer, the staging area and the sidecar's bases. */
  async reset(): Promise<void> {
    const upper = this.layer.upperBase;
    await Deno.remove(upper, { recursive: true });
    await Deno.mkdir(upper, { mode: 0o755 });
    await Deno.remove(this.staging, { recursive: true }).catch(() => {});
    await Deno.mkdir(this.staging, { mode: 0o700 });
    this.layer.invalidate({ root: true });
    this.state.clear();
    this.seen.clear();
    await this.state.save();
  }
}

function otherWorkspace(dir: string, lower: string): VfsError {
  return new VfsError(
    VfsCode.VFS_STATE_INVALID,
    `Overlay ${JSON.stringify(dir)} field "lower" belongs to workspace ${
      JSON.stringify(lower)
    }: open it over that workspace or discard it`,
    { data: { path: dir, field: "lower" } },
  );
}
