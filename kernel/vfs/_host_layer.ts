/**
 * One host directory as the path walker sees it: `lstat` of `<root>/<path>`.
 *
 * @module
 */
import { resolve } from "node:path";
import { mapFsError } from "./_map_error.ts";
import type { LayerNode, LayerView } from "./resolve_vfs_path.ts";
import type { VfsKind } from "./vfs.ts";

/** An entry of a host directory tree. */
export interface HostNode extends LayerNode {
  /** `lstat` of the entry. */
  readonly info: Deno.FileInfo;
}

/** The kind of an `lstat` result. */
export function kindOf(info: Deno.FileInfo): VfsKind {
  if (info.isFile) return "file";
  if (info.isDirectory) return "dir";
  if (info.isSymlink) return "symlink";
  return "other";
}

/** `lstat`, with "absent" (not found, or a non-directory on the way) as null. */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw err;
  }
}

/** The spellings of a root directory: as given (resolved) and its real path, longest first. */
export function rootSpellings(root: string): { real: string; roots: string[] } {
  const given = resolve(root);
  let real: string;
  try {
    real = Deno.realPathSync(given);
  } catch (err) {
    throw mapFsError(err, { path: given, op: "open root" });
  }
  const roots = real === given ? [real] : [given, real];
  return { real, roots: roots.sort((a, b) => b.length - a.length) };
}

/** A single host directory tree. */
export class HostLayer implements LayerView<HostNode> {
  /** The root's real path. */
  readonly base: string;
  /** Absolute spellings of the root. */
  readonly roots: readonly string[];

  private constructor(base: string, roots: readonly string[]) {
    this.base = base;
    this.roots = roots;
  }

  /** Opens the tree at `root` (which must exist). */
  static open(root: string): HostLayer {
    const { real, roots } = rootSpellings(root);
    return new HostLayer(real, roots);
  }

  /** The host path of canonical `path`. */
  hostPath(path: string): string {
    return path === "" ? this.base : `${this.base}/${path}`;
  }

  #root: HostNode | null = null;

  /** The root node (its lstat taken once: stat the root afresh with {@link HostLayer.fresh}). */
  root(): HostNode {
    if (this.#root === null) {
      const info = Deno.lstatSync(this.base);
      this.#root = { kind: kindOf(info), info };
    }
    return this.#root;
  }

  /** `node` with a fresh lstat when it is the (cached) root. */
  fresh(node: HostNode, path: string): HostNode {
    if (path !== "") return node;
    const info = Deno.lstatSync(this.base);
    return { kind: kindOf(info), info };
  }

  /** The entry at `path`, or null. */
  child(_parent: HostNode, path: string): HostNode | null {
    const info = lstatOrNull(this.hostPath(path));
    return info === null ? null : { kind: kindOf(info), info };
  }

  /** The symlink's target. */
  readLink(_node: HostNode, path: string): string {
    return Deno.readLinkSync(this.hostPath(path));
  }
}
