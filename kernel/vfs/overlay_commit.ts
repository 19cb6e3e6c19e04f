/**
 * Commit: apply an overlay's changes to the workspace, each file atomically (temp + rename),
 * parents before children, additions before deletions (so a rename never loses its
 * source). Before a change is applied, the workspace entry is compared with the base the
 * overlay recorded when it first shadowed it; if the workspace changed since, the change is
 * not applied but reported as a {@link VfsConflict}, and the overlay keeps its version, so
 * both versions stay readable. Applied changes leave the upper layer.
 *
 * @module
 */
import { kindOf, lstatOrNull } from "./_host_layer.ts";
import { atomicCopy, atomicSymlink } from "./_atomic_copy.ts";
import { mapFsError } from "./_map_error.ts";
import type { OverlayCore } from "./_overlay_core.ts";
import { quotePath, VfsCode, VfsError } from "./errors.ts";
import { ABSENT, compareBase, describeBase, type LowerBase } from "./lower_base.ts";
import { scanUpper, selected, type UpperRecord } from "./overlay_diff.ts";

/** A change commit did not apply because the workspace changed under it. */
export interface VfsConflict {
  /** Canonical path of the change. */
  path: string;
  /**
   * `changed`: the workspace entry differs from the base; `created`: it appeared where there
   * was none; `removed`: it disappeared; `parent`: a directory above it conflicted.
   */
  reason: "changed" | "created" | "removed" | "parent";
  /** The workspace entry as the overlay recorded it. */
  expected: LowerBase;
  /** The workspace entry as commit found it. */
  found: LowerBase;
  /** A sentence for the human. */
  message: string;
}

/** Options of {@link OverlayVfs.commit}. */
export interface CommitOptions {
  /** Only changes at or below these VFS paths (default: all). */
  paths?: readonly string[];
  /** Apply even where the workspace changed (the operator chose the overlay's version). */
  force?: boolean;
  /** Apply nothing, and throw `VFS_CONFLICT`, if any selected change conflicts. */
  strict?: boolean;
}

/** What commit did. */
export interface CommitResult {
  /** Paths whose change reached the workspace, in the order applied. */
  applied: string[];
  /** Changes left in the overlay because the workspace changed under them. */
  conflicts: VfsConflict[];
}

/** Applies the selected changes of the overlay (the caller holds the session lock). */
export async function commitOverlay(
  core: OverlayCore,
  selection: readonly string[] | null,
  options: { force?: boolean; strict?: boolean; scheme: string },
): Promise<CommitResult> {
  const records = (await scanUpper(core)).filter((r) => selected(r.path, selection));
  const isChange = (r: UpperRecord) => r.status !== "same" && r.status !== "stale";
  if (options.strict && !options.force) {
    const found: VfsConflict[] = [];
    for (const record of records.filter(isChange)) {
      const conflict = await check(core, record, options.scheme);
      if (conflict !== null) found.push(conflict);
    }
    if (found.length > 0) {
      throw new VfsError(
        VfsCode.VFS_CONFLICT,
        `Cannot commit: ${found.length} change(s) conflict with the workspace: ${
          found.slice(0, 5).map((c) => quotePath(c.path)).join(", ")
        }; nothing was applied`,
        { data: { paths: found.map((c) => c.path) } },
      );
    }
  }
  const ordered = [
    ...records.filter((r) => r.status !== "deleted"),
    ...records.filter((r) => r.status === "deleted"),
  ];
  const applied: string[] = [];
  const conflicts: VfsConflict[] = [];
  const blocked: string[] = [];
  let at = "";
  try {
    for (const record of ordered) {
      at = `${options.scheme}://${record.path}`;
      const parentConflict = blocked.find((b) => record.path.startsWith(`${b}/`));
      if (parentConflict !== undefined) {
        if (isChange(record)) conflicts.push(parentOf(record.path, parentConflict, options.scheme));
        continue;
      }
      if (!isChange(record)) {
        await core.removeUpper(record.path); // equal to the workspace, or a whiteout over nothing
        core.state.delete(record.path);
        continue;
      }
      if (record.upper !== null && kindOf(record.upper) === "other") continue; // never committed
      const obstacle = lowerObstacle(core, record.path);
      if (obstacle !== null) {
        conflicts.push(parentOf(record.path, obstacle, options.scheme));
        if (record.kind === "dir") blocked.push(record.path);
        continue;
      }
      if (!options.force) {
        const conflict = await check(core, record, options.scheme);
        if (conflict !== null) {
          conflicts.push(conflict);
          if (record.kind === "dir" || record.upper?.isDirectory) blocked.push(record.path);
          continue;
        }
      }
      await apply(core, record);
      core.layer.invalidate();
      applied.push(record.path);
      for (const key of [...core.seen.keys()]) {
        if (key === record.path || key.startsWith(`${record.path}/`)) core.seen.delete(key);
      }
    }
    await prune(core, "");
    core.layer.invalidate();
    if (selection === null) forgetStaleBases(core);
  } catch (err) {
    throw mapFsError(err, { path: at, op: "commit" });
  } finally {
    await core.state.save();
  }
  return { applied, conflicts };
}

async function check(
  core: OverlayCore,
  record: UpperRecord,
  scheme: string,
): Promise<VfsConflict | null> {
  const expected = core.state.get(record.path) ?? ABSENT;
  const info = core.lowerNow(record.path);
  if (record.status === "added" && record.kind === "dir" && info?.isDirectory) return null;
  const found = await compareBase(core.layer.lowerPath(record.path), { info, expected });
  if (found === null) return null;
  const reason = expected.kind === "absent"
    ? "created"
    : found.kind === "absent"
    ? "removed"
    : "changed";
  const what = reason === "created"
    ? "the workspace gained an entry there"
    : reason === "removed"
    ? "the workspace entry was removed"
    : "the workspace entry changed";
  return {
    path: record.path,
    reason,
    expected,
    found,
    message: `Cannot commit ${
      quotePath(`${scheme}://${record.path}`)
    }: ${what} since the overlay recorded it (expected ${describeBase(expected)}, found ${
      describeBase(found)
    }); the overlay keeps its version`,
  };
}

function parentOf(path: string, parent: string, scheme: string): VfsConflict {
  return {
    path,
    reason: "parent",
    expected: { kind: "dir", tree: "" },
    found: ABSENT,
    message: `Cannot commit ${quotePath(`${scheme}://${path}`)}: its parent ${
      quotePath(`${scheme}://${parent}`)
    } conflicts with the workspace; the overlay keeps its version`,
  };
}

/** The first ancestor of `path` that exists in the workspace as a non-directory, or null. */
function lowerObstacle(core: OverlayCore, path: string): string | null {
  const segments = path.split("/");
  let current = "";
  for (let i = 0; i < segments.length - 1; i++) {
    current = current === "" ? segments[i] : `${current}/${segments[i]}`;
    const info = lstatOrNull(core.layer.lowerPath(current));
    if (info === null) return null;
    if (!info.isDirectory) return current;
  }
  return null;
}

async function ensureLowerParents(core: OverlayCore, path: string): Promise<void> {
  const segments = path.split("/");
  let current = "";
  for (let i = 0; i < segments.length - 1; i++) {
    current = current === "" ? segments[i] : `${current}/${segments[i]}`;
    const host = core.layer.lowerPath(current);
    if (lstatOrNull(host)?.isDirectory) continue;
    const upper = lstatOrNull(core.layer.upperPath(current));
    await Deno.mkdir(host, { mode: upper?.isDirectory ? upper.mode! & 0o7777 : 0o755 });
  }
}

async function apply(core: OverlayCore, record: UpperRecord): Promise<void> {
  const { layer } = core;
  const host = layer.lowerPath(record.path);
  const upperHost = layer.upperPath(record.path);
  const current = core.lowerNow(record.path);
  await ensureLowerParents(core, record.path);
  if (record.status === "deleted") {
    if (current !== null) await Deno.remove(host, { recursive: true });
    await core.removeUpper(record.path);
    core.state.delete(record.path);
    core.state.deleteBelow(record.path);
    return;
  }
  const upper = record.upper!;
  switch (kindOf(upper)) {
    case "file":
      if (current?.isDirectory) await Deno.remove(host, { recursive: true });
      await atomicCopy(upperHost, host, upper.mode! & 0o7777);
      await Deno.remove(upperHost);
      break;
    case "symlink":
      if (current?.isDirectory) await Deno.remove(host, { recursive: true });
      await atomicSymlink(await Deno.readLink(upperHost), host);
      await Deno.remove(upperHost);
      break;
    case "dir":
      if (current !== null && !current.isDirectory) await Deno.remove(host);
      if (current === null || !current.isDirectory) {
        await Deno.mkdir(host, { mode: upper.mode! & 0o7777 });
      }
      break;
    case "other":
      return;
  }
  core.state.delete(record.path);
}

/** Drops bases of paths the upper layer no longer shadows (after a full commit). */
function forgetStaleBases(core: OverlayCore): void {
  for (const path of core.state.paths()) {
    const marker = core.format === "marker" && lstatOrNull(core.layer.markerPath(path)) !== null;
    if (!marker && lstatOrNull(core.layer.upperPath(path)) === null) core.state.delete(path);
  }
}

/** Removes upper directories left empty over workspace directories (post-order). */
async function prune(core: OverlayCore, dir: string): Promise<boolean> {
  const host = core.layer.upperPath(dir);
  let empty = true;
  for await (const entry of Deno.readDir(host)) {
    const child = dir === "" ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory && (await prune(core, child))) continue;
    empty = false;
  }
  if (dir === "" || !empty) return false;
  if (core.lowerNow(dir)?.isDirectory !== true) return false;
  await Deno.remove(host);
  return true;
}
