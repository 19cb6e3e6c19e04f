/**
 * Path resolution, the one choke point every VFS operation passes before it touches the host
 * filesystem: the lexical rules of {@link canonicalize}, then a walk component by component
 * with `lstat` (upper layer first, then lower), following symlinks the way the kernel would —
 * but only while they stay inside the root:
 *
 * - an absolute target must lie inside the root; a relative one is joined to the link's
 *   (already symlink-free) directory, and its `..` may not climb above the root
 *   → `VFS_SYMLINK_ESCAPE`
 * - more than 40 links in one resolution → `VFS_SYMLINK_LOOP`
 * - the expanded path is held to 4,096 bytes → `VFS_PATH_TOO_LONG`
 *
 * The walk uses synchronous `lstat` on purpose: about 2 µs each here against ~40 µs for an
 * async op, which is what keeps overlay reads near direct ones (`bench/vfs_bench.ts`).
 *
 * @module
 */
import { canonicalize, type CanonicalizeOptions, utf8Length, VFS_LIMITS } from "./canonicalize.ts";
import { quotePath, VfsCode, VfsError } from "./errors.ts";
import { HostLayer } from "./_host_layer.ts";
import { OverlayLayer } from "./_overlay_layer.ts";
import type { ResolvedVfsPath, VfsKind } from "./vfs.ts";
import type { WhiteoutFormat } from "./whiteout.ts";

/** What the walker needs to know of a node: its kind (symlinks not followed). */
export interface LayerNode {
  /** The entry's own kind. */
  readonly kind: VfsKind;
}

/** A filesystem as the walker sees it: one layer (host) or two (overlay). */
export interface LayerView<N extends LayerNode> {
  /** Absolute host spellings of the root, for absolute paths and absolute symlink targets. */
  readonly roots: readonly string[];
  /** The root directory's node. */
  root(): N;
  /** The entry at canonical `path`, whose parent directory is `parent`; null when absent. */
  child(parent: N, path: string): N | null;
  /** The target of the symlink `node` at canonical `path`. */
  readLink(node: N, path: string): string;
}

/** The result of {@link walkPath}. */
export interface Walked<N> {
  /** Canonical root-relative path (symlinks followed as asked). */
  path: string;
  /** The final entry, or null when absent. */
  node: N | null;
  /** The final's parent directory; null for the root and when `blocked` is set. */
  parent: N | null;
  /** Why there is no parent: an ancestor is missing, or is not a directory. */
  blocked: "missing" | "notdir" | null;
}

/** Options of {@link walkPath}. */
export interface WalkOptions {
  /** Follow a symlink in the final component. */
  followFinal: boolean;
  /** The path to name in errors (the caller's spelling); defaults to the input. */
  display?: string;
  /** With `followFinal: false`, still refuse a final symlink that escapes or loops (default true). */
  checkFinal?: boolean;
}

/**
 * Walks the lexically canonical path `lexical` through `view`, following symlinks inside the
 * root; errors name `options.display` (the caller's spelling).
 */
export function walkPath<N extends LayerNode>(
  lexical: string,
  view: LayerView<N>,
  options: WalkOptions,
): Walked<N> {
  return walkFrom(lexical === "" ? [] : lexical.split("/"), view, options, { hops: 0 });
}

function walkFrom<N extends LayerNode>(
  start: string[],
  view: LayerView<N>,
  options: WalkOptions,
  budget: { hops: number },
): Walked<N> {
  const display = options.display ?? start.join("/");
  let segments = start;
  restart: for (;;) {
    let node: N | null = view.root();
    let parent: N | null = null;
    const done: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const name = segments[i];
      if (node === null || node.kind !== "dir") {
        return {
          path: segments.join("/"),
          node: null,
          parent: null,
          blocked: node === null ? "missing" : "notdir",
        };
      }
      const childPath = done.length === 0 ? name : `${done.join("/")}/${name}`;
      const child: N | null = view.child(node, childPath);
      const final = i === segments.length - 1;
      if (child !== null && child.kind === "symlink") {
        if (final && !options.followFinal) {
          // The link itself is the subject; still refuse one that escapes or loops.
          if (options.checkFinal !== false) {
            walkFrom(segments, view, { followFinal: true, display }, { hops: budget.hops });
          }
        } else {
          if (++budget.hops > VFS_LIMITS.maxSymlinkHops) {
            throw new VfsError(
              VfsCode.VFS_SYMLINK_LOOP,
              `Path ${
                quotePath(display)
              } follows more than ${VFS_LIMITS.maxSymlinkHops} symlinks (limit ${VFS_LIMITS.maxSymlinkHops}): a symlink loop`,
              { data: { path: display, limit: VFS_LIMITS.maxSymlinkHops } },
            );
          }
          const target = view.readLink(child, childPath);
          const base = symlinkTarget({ display, link: childPath, dir: done, target }, view.roots);
          segments = [...base, ...segments.slice(i + 1)];
          const length = utf8Length(segments.join("/"));
          if (length > VFS_LIMITS.maxPathBytes) {
            throw new VfsError(
              VfsCode.VFS_PATH_TOO_LONG,
              `Path ${
                quotePath(display)
              } is too long after symlinks: ${length} bytes (limit ${VFS_LIMITS.maxPathBytes})`,
              { data: { path: display, length, limit: VFS_LIMITS.maxPathBytes } },
            );
          }
          continue restart;
        }
      }
      done.push(name);
      parent = node;
      node = child;
    }
    return { path: done.join("/"), node, parent, blocked: null };
  }
}

/** The root-relative segments a symlink at `link` (in directory `dir`) points to. */
function symlinkTarget(
  symlink: { display: string; link: string; dir: readonly string[]; target: string },
  roots: readonly string[],
): string[] {
  const { display, link, dir, target } = symlink;
  const escape = () =>
    new VfsError(
      VfsCode.VFS_SYMLINK_ESCAPE,
      `Path ${quotePath(display)} leaves the root through symlink ${quotePath(link)} -> ${
        quotePath(target)
      }`,
      { data: { path: display, link, target } },
    );
  if (target === "") throw escape();
  const parts: string[] = [];
  if (target.startsWith("/")) {
    for (const segment of target.split("/")) {
      if (segment === "" || segment === ".") continue;
      if (segment === "..") parts.pop();
      else parts.push(segment);
    }
    for (const root of roots) {
      const rootParts = root.split("/").filter((s) => s !== "" && s !== ".");
      if (rootParts.length <= parts.length && rootParts.every((p, i) => parts[i] === p)) {
        return parts.slice(rootParts.length);
      }
    }
    throw escape();
  }
  parts.push(...dir);
  for (const segment of target.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (parts.length === 0) throw escape();
      parts.pop();
    } else parts.push(segment);
  }
  return parts;
}

/** Options of {@link resolveVfsPath}. */
export interface ResolveVfsPathOptions extends CanonicalizeOptions {
  /** Host directory of the filesystem's root (the workspace, for an overlay the lower dir). */
  root: string;
  /** Host directory of an overlay's upper layer, looked up before `root`. */
  upper?: string;
  /** Whiteout format of `upper` (default: this system's). */
  whiteout?: WhiteoutFormat;
  /** Follow a symlink in the final component (default true). */
  followFinal?: boolean;
}

/**
 * Resolves the VFS path `path` against a root (and optionally an overlay upper layer): the
 * lexical rules, then symlinks. Returns the canonical root-relative path and what it names;
 * throws the {@link VfsError} of the first rule broken. Synchronous: it only `lstat`s.
 *
 * @example
 * ```ts
 * import { resolveVfsPath } from "./mod.ts";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/src`);
 * await Deno.symlink("src", `${root}/link`);
 * const resolved = resolveVfsPath("workspace://link/./a.ts", { root, scheme: "workspace" });
 * if (resolved.path !== "src/a.ts" || resolved.kind !== null) throw new Error("resolve");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function resolveVfsPath(path: string, options: ResolveVfsPathOptions): ResolvedVfsPath {
  const view: LayerView<LayerNode> = options.upper === undefined
    ? HostLayer.open(options.root)
    : OverlayLayer.open(options.root, options.upper, options.whiteout) as LayerView<LayerNode>;
  const lexical = canonicalize(path, {
    scheme: options.scheme,
    roots: [...(options.roots ?? []), ...view.roots],
  });
  const walked = walkPath(lexical, view, {
    followFinal: options.followFinal ?? true,
    display: path,
  });
  return { path: walked.path, kind: walked.node?.kind ?? null };
}
