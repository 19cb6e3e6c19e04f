/**
 * Overlay changes on a walked (validated, canonical) path, shared by `OverlayVfs` and the
 * fold of a subprocess's upper dir. Each records the bases of the workspace entries it is
 * about to shadow, saves the sidecar, then changes the upper layer. Folder-private.
 *
 * @module
 */
import type { OverlayCore } from "./_overlay_core.ts";
import { hasLowerDir, type OverlayNode } from "./_overlay_layer.ts";
import type { Walked } from "./resolve_vfs_path.ts";

/**
 * True when the upper layer holds nothing of its own at `node`, so the workspace entry's base
 * must be recorded now. (Where the upper layer already has an entry, the base was recorded
 * when it was made, or the workspace had nothing there — recording today's entry would hide
 * a conflict.)
 */
function firstTouch(node: OverlayNode | null): boolean {
  return node === null || node.upper === null || hasLowerDir(node);
}

/** Writes `bytes` at `w.path` (a file or nothing), keeping a workspace file's mode. */
export async function writeBytes(
  core: OverlayCore,
  w: Walked<OverlayNode>,
  file: { bytes: Uint8Array; mode: number },
): Promise<void> {
  const { bytes, mode } = file;
  const upper = w.node?.upper ?? null;
  if (upper !== null && upper.isFile) return await core.placeBytes(w.path, { bytes, mode, upper });
  const lower = core.lowerEntry(w);
  if (firstTouch(w.node)) {
    await core.touch(w.path, lower);
    await core.state.save();
  }
  const keep = w.node !== null && w.node.upper === null && lower !== null && lower.isFile;
  await core.placeBytes(w.path, {
    bytes,
    mode: keep ? lower.mode! & 0o7777 : mode,
    exact: keep,
    upper: null,
  });
}

/** Places a copy of the host file or symlink `source` (`info` its lstat) at `w.path`. */
export async function copyInto(
  core: OverlayCore,
  w: Walked<OverlayNode>,
  from: { source: string; info: Deno.FileInfo },
): Promise<void> {
  if (firstTouch(w.node)) await core.touch(w.path, core.lowerEntry(w));
  if (w.node?.kind === "dir") core.state.deleteBelow(w.path);
  await core.state.save();
  await core.placeCopy(w.path, from);
}

/** Makes `w.path` an empty directory, replacing whatever hides or occupies it. */
export async function makeDir(core: OverlayCore, w: Walked<OverlayNode>): Promise<void> {
  const lower = core.lowerEntry(w);
  if (firstTouch(w.node)) await core.touch(w.path, lower, { hash: false });
  await core.state.save();
  await core.mkdirUpper(w.path, lower);
}

/** Removes the entry at `w.path` (a directory with everything below it). */
export async function removeEntry(core: OverlayCore, w: Walked<OverlayNode>): Promise<void> {
  const lower = core.lowerEntry(w);
  if (firstTouch(w.node)) await core.touch(w.path, lower, { hash: false });
  if (w.node?.kind === "dir") core.state.deleteBelow(w.path);
  await core.state.save();
  if (lower !== null) await core.placeWhiteout(w.path);
  else await core.removeUpper(w.path);
}

/**
 * Moves the non-directory at `a.path` to `b.path` (which is absent or a non-directory): the
 * upper entry is renamed, a workspace entry copied up; then `a`'s workspace entry is hidden.
 */
export async function moveEntry(
  core: OverlayCore,
  move: { from: Walked<OverlayNode>; to: Walked<OverlayNode> },
): Promise<void> {
  const { from: a, to: b } = move;
  const source = a.node!;
  if (source.upper === null) {
    await copyInto(core, b, { source: core.layer.lowerPath(a.path), info: source.lower! });
  } else {
    if (firstTouch(b.node)) await core.touch(b.path, core.lowerEntry(b));
    await core.state.save();
    await core.ensureUpperParent(b.path);
    await core.install(b.path, core.layer.upperPath(a.path));
  }
  await removeEntry(core, a);
}
