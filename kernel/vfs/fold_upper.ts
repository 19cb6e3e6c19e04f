/**
 * Fold: merge an upper dir that a kernel overlayfs mount left behind (a native subprocess ran
 * with `lowerdir=<session upper>:<workspace>`, DESIGN §6a) into the session's upper layer.
 * Entries are applied parents first: a 0/0 character-device whiteout becomes a deletion, a
 * directory is created (an opaque one — `user.overlay.opaque` or `trusted.overlay.opaque` =
 * `y` — also deletes what it hid), a file or symlink replaces what was there. Devices, FIFOs
 * and sockets are skipped and listed. Bases are recorded at fold time. The folded dir is
 * only read; the caller removes it.
 *
 * @module
 */
import { canonicalize } from "./canonicalize.ts";
import { kindOf, lstatOrNull } from "./_host_layer.ts";
import { mapFsError } from "./_map_error.ts";
import type { OverlayCore } from "./_overlay_core.ts";
import { copyInto, makeDir, removeEntry } from "./_overlay_ops.ts";
import { quotePath, VfsCode, VfsError } from "./errors.ts";
import { isOpaqueDir, isWhiteoutInfo, WHITEOUT_MARKER_PREFIX } from "./whiteout.ts";

/** What a fold did. */
export interface FoldResult {
  /** Canonical paths created, replaced or deleted in the session's overlay, in order. */
  changed: string[];
  /** Entries that were not folded (devices, FIFOs, sockets). */
  skipped: string[];
}

interface SourceEntry {
  rel: string;
  host: string;
  info: Deno.FileInfo;
  kind: "whiteout" | "dir" | "file" | "symlink" | "other";
  opaque: boolean;
  children: Set<string>;
}

async function scan(core: OverlayCore, root: string): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  const visit = async (host: string, rel: string, into: Set<string>): Promise<void> => {
    const names: string[] = [];
    for await (const entry of Deno.readDir(host)) names.push(entry.name);
    names.sort();
    for (const name of names) {
      const childRel = rel === "" ? name : `${rel}/${name}`;
      canonicalize(childRel); // the same limits as any other path
      if (core.format === "marker" && name.startsWith(WHITEOUT_MARKER_PREFIX)) {
        throw new VfsError(
          VfsCode.VFS_PATH_INVALID,
          `Cannot fold ${
            quotePath(childRel)
          }: names starting "${WHITEOUT_MARKER_PREFIX}" are reserved by marker whiteouts`,
          { data: { path: childRel, reason: "reserved-name" } },
        );
      }
      const childHost = `${host}/${name}`;
      const info = lstatOrNull(childHost);
      if (info === null) continue;
      into.add(name);
      const kind = isWhiteoutInfo(info) ? "whiteout" : kindOf(info);
      const entry: SourceEntry = {
        rel: childRel,
        host: childHost,
        info,
        kind,
        opaque: kind === "dir" && isOpaqueDir(childHost),
        children: new Set(),
      };
      entries.push(entry);
      if (kind === "dir") await visit(childHost, childRel, entry.children);
    }
  };
  const info = lstatOrNull(root);
  if (info === null || !info.isDirectory) {
    throw new VfsError(
      VfsCode.VFS_NOT_FOUND,
      `Cannot fold ${quotePath(root)}: it is not a directory`,
      { data: { path: root } },
    );
  }
  await visit(root, "", new Set());
  return entries;
}

/** Folds the overlayfs-format upper dir `dir` into `core` (the caller holds the lock). */
export async function foldUpperInto(core: OverlayCore, dir: string): Promise<FoldResult> {
  const entries = await scan(core, dir);
  const changed: string[] = [];
  const skipped: string[] = [];
  for (const entry of entries) {
    const walkOptions = { followFinal: false, checkFinal: false, display: entry.rel };
    const w = core.walk(entry.rel, walkOptions);
    const where = { path: entry.rel, op: "fold" };
    if (w.blocked !== null) {
      throw new VfsError(
        VfsCode.VFS_NOT_A_DIRECTORY,
        `Cannot fold ${quotePath(entry.rel)}: a parent is not a directory in the overlay`,
        { data: { path: entry.rel, op: "fold" } },
      );
    }
    try {
      switch (entry.kind) {
        case "whiteout":
          if (w.node !== null) {
            await removeEntry(core, w);
            changed.push(entry.rel);
          }
          break;
        case "dir":
          if (w.node === null || w.node.kind !== "dir") {
            await makeDir(core, w);
            changed.push(entry.rel);
          } else if (entry.opaque) {
            for (const child of await core.readdirMerged(entry.rel, w.node)) {
              if (entry.children.has(child.name)) continue;
              const path = `${entry.rel}/${child.name}`;
              const cw = core.walk(path, { ...walkOptions, display: path });
              if (cw.node === null) continue;
              await removeEntry(core, cw);
              changed.push(path);
            }
          }
          break;
        case "file":
        case "symlink":
          await copyInto(core, w, { source: entry.host, info: entry.info });
          changed.push(entry.rel);
          break;
        default:
          skipped.push(entry.rel);
      }
    } catch (err) {
      throw mapFsError(err, where);
    }
  }
  return { changed, skipped };
}
