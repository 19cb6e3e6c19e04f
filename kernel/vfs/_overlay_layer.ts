/**
 * An overlay as the path walker sees it, with overlayfs's rules: an upper entry hides the
 * lower one, a whiteout hides it too, and only two directories merge. A lower entry is looked
 * up only where every ancestor is a real lower directory, so a lower symlink that an upper
 * directory replaced is never followed by accident.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { kindOf, lstatOrNull, rootSpellings } from "./_host_layer.ts";
import type { LayerNode, LayerView } from "./resolve_vfs_path.ts";
import {
  defaultWhiteoutFormat,
  isWhiteoutInfo,
  WHITEOUT_MARKER_PREFIX,
  type WhiteoutFormat,
} from "./whiteout.ts";

/** An entry of the merged view. */
export interface OverlayNode extends LayerNode {
  /** `lstat` of the upper entry (never a whiteout), or null. */
  readonly upper: Deno.FileInfo | null;
  /** `lstat` of the lower entry when visible (upper absent, or both directories), else null. */
  readonly lower: Deno.FileInfo | null;
  /** The parent's lower side is a real directory, so the lower path may hold a (hidden) entry. */
  readonly lowerParent: boolean;
}

const WHITEOUT = "whiteout";

/** True when the merged directory `node` has a lower side whose children show through. */
export function hasLowerDir(node: OverlayNode): boolean {
  return node.lower !== null && node.lower.isDirectory;
}

/** A lower tree under an upper tree. */
export class OverlayLayer implements LayerView<OverlayNode> {
  /** Real path of the lower root (the workspace). */
  readonly lowerBase: string;
  /** Real path of the upper root. */
  readonly upperBase: string;
  /** Absolute spellings of the lower root. */
  readonly roots: readonly string[];
  /** How whiteouts are written in the upper dir. */
  readonly format: WhiteoutFormat;
  #cache = new Map<string, Deno.FileInfo | null | typeof WHITEOUT>();
  #root: OverlayNode | null = null;

  private constructor(
    lowerBase: string,
    upperBase: string,
    roots: string[],
    format: WhiteoutFormat,
  ) {
    this.lowerBase = lowerBase;
    this.upperBase = upperBase;
    this.roots = roots;
    this.format = format;
  }

  /** Opens the overlay of `upper` over `lower` (both must exist). */
  static open(lower: string, upper: string, format = defaultWhiteoutFormat()): OverlayLayer {
    const l = rootSpellings(lower);
    const u = rootSpellings(upper);
    return new OverlayLayer(l.real, u.real, l.roots, format);
  }

  /** Host path of canonical `path` in the lower layer. */
  lowerPath(path: string): string {
    return path === "" ? this.lowerBase : `${this.lowerBase}/${path}`;
  }

  /** Host path of canonical `path` in the upper layer. */
  upperPath(path: string): string {
    return path === "" ? this.upperBase : `${this.upperBase}/${path}`;
  }

  /** Host path of the `marker` whiteout of `path`. */
  markerPath(path: string): string {
    return `${dirname(this.upperPath(path))}/${WHITEOUT_MARKER_PREFIX}${basename(path)}`;
  }

  /**
   * Forgets what the walk cached of the upper layer. The upper dir is written only by this
   * overlay (under its lock), so the cache of absent entries, whiteouts and directories there
   * is exact as long as every change to it is followed by this call; files are always
   * `lstat`ed afresh, and the workspace is never cached.
   */
  invalidate(options: { root?: boolean } = {}): void {
    this.#cache.clear();
    if (options.root) this.#root = null;
  }

  /**
   * What the walk learnt of the upper entry at `path` since the last invalidation: true when
   * it is a whiteout, false when the upper layer has nothing there, undefined when unknown.
   */
  knownWhiteout(path: string): boolean | undefined {
    const cached = this.#cache.get(path);
    if (cached === undefined) return undefined;
    if (cached === WHITEOUT) return true;
    return cached === null ? false : undefined;
  }

  /** True when the upper layer has a directory at `path` (cached like the walk's lookups). */
  isUpperDir(path: string): boolean {
    const cached = this.#cache.get(path);
    if (cached !== undefined && cached !== null && cached !== WHITEOUT) return cached.isDirectory;
    const info = lstatOrNull(this.upperPath(path));
    if (info !== null && info.isDirectory) this.#cache.set(path, info);
    return info !== null && info.isDirectory;
  }

  /** The merged root (cached until `invalidate({ root: true })`: the roots stay put). */
  root(): OverlayNode {
    if (this.#root === null) {
      const upper = Deno.lstatSync(this.upperBase);
      const lower = Deno.lstatSync(this.lowerBase);
      this.#root = { kind: "dir", upper, lower, lowerParent: true };
    }
    return this.#root;
  }

  /** The upper entry at `path` (parent an upper dir): its lstat, null, or "whiteout". */
  #upper(path: string, lowerDir: boolean): Deno.FileInfo | null | typeof WHITEOUT {
    const cached = this.#cache.get(path);
    if (cached !== undefined) return cached;
    let upper: Deno.FileInfo | null | typeof WHITEOUT = lstatOrNull(this.upperPath(path));
    if (upper !== null && this.format === "chardev" && isWhiteoutInfo(upper)) upper = WHITEOUT;
    else if (upper === null && this.format === "marker" && lowerDir) {
      if (lstatOrNull(this.markerPath(path)) !== null) upper = WHITEOUT;
    }
    if (upper === null || upper === WHITEOUT || upper.isDirectory) this.#cache.set(path, upper);
    return upper;
  }

  /** The merged entry at `path` below the merged directory `parent`, or null. */
  child(parent: OverlayNode, path: string): OverlayNode | null {
    const lowerDir = hasLowerDir(parent);
    let upper: Deno.FileInfo | null = null;
    if (parent.upper !== null && parent.upper.isDirectory) {
      const found = this.#upper(path, lowerDir);
      if (found === WHITEOUT) return null;
      upper = found;
    }
    let lower: Deno.FileInfo | null = null;
    if (lowerDir && (upper === null || upper.isDirectory)) {
      lower = lstatOrNull(this.lowerPath(path));
      if (upper !== null && lower !== null && !lower.isDirectory) lower = null;
    }
    const info = upper ?? lower;
    if (info === null) return null;
    return { kind: kindOf(info), upper, lower, lowerParent: lowerDir };
  }

  /** The target of the symlink `node` (from the layer it lives in). */
  readLink(node: OverlayNode, path: string): string {
    return Deno.readLinkSync(node.upper !== null ? this.upperPath(path) : this.lowerPath(path));
  }
}
