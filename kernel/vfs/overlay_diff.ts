/**
 * What an overlay changed: a walk of the upper layer against the workspace. An upper entry
 * where the workspace has none is `added`; one over a different workspace entry is
 * `modified` (a file whose bytes are equal is no change at all); a whiteout over a workspace
 * entry is `deleted` (a deleted directory is one change, not one per file). Directories
 * present on both sides are walked, not reported.
 *
 * @module
 */
import { kindOf, lstatOrNull } from "./_host_layer.ts";
import type { OverlayCore } from "./_overlay_core.ts";
import { unifiedDiff } from "./unified_diff.ts";
import type { VfsKind } from "./vfs.ts";
import { isWhiteoutInfo, WHITEOUT_MARKER_PREFIX } from "./whiteout.ts";

/** One change of an overlay, as `astrid diff` lists it. */
export interface VfsChange {
  /** Canonical root-relative path. */
  path: string;
  /** What happened to the path. */
  change: "added" | "modified" | "deleted";
  /** The kind now (for `deleted`: the kind that was deleted). */
  kind: VfsKind;
  /** The workspace's kind when it differs from `kind` (a file replaced by a directory). */
  previousKind?: VfsKind;
  /** Size in bytes of the overlay's file. */
  size?: number;
  /** Size in bytes of the workspace's file. */
  previousSize?: number;
  /** A symlink's target in the overlay. */
  target?: string;
  /** A unified diff, for text files up to 64 KiB on both sides when asked for. */
  text?: string;
}

/** Options of {@link OverlayVfs.diff}. */
export interface DiffOptions {
  /** Attach {@link VfsChange.text} to changed small UTF-8 text files. */
  text?: boolean;
  /** Only changes at or below these VFS paths. */
  paths?: readonly string[];
}

/** An upper entry with its status; commit also acts on `same` and `stale` ones. */
export interface UpperRecord {
  /** Canonical path. */
  path: string;
  /** `same`: equal to the workspace; `stale`: a whiteout over nothing. */
  status: VfsChange["change"] | "same" | "stale";
  /** Kind of the upper entry (`deleted`: of the workspace entry). */
  kind: VfsKind;
  /** `lstat` of the upper entry, null for whiteouts. */
  upper: Deno.FileInfo | null;
  /** `lstat` of the workspace entry, null when absent. */
  lower: Deno.FileInfo | null;
}

const TEXT_LIMIT = 64 * 1024;

/** Walks the upper layer; records come parents first, siblings sorted. */
export async function scanUpper(core: OverlayCore): Promise<UpperRecord[]> {
  const { layer } = core;
  const records: UpperRecord[] = [];
  const visit = async (dir: string, lowerDir: boolean): Promise<void> => {
    const names: string[] = [];
    for await (const entry of Deno.readDir(layer.upperPath(dir))) names.push(entry.name);
    names.sort();
    const present = new Set(names);
    for (const name of names) {
      const marker = core.format === "marker" && name.startsWith(WHITEOUT_MARKER_PREFIX);
      const path = join(dir, marker ? name.slice(WHITEOUT_MARKER_PREFIX.length) : name);
      const lower = lowerDir ? lstatOrNull(layer.lowerPath(path)) : null;
      if (marker) {
        if (present.has(name.slice(WHITEOUT_MARKER_PREFIX.length))) continue;
        records.push(whiteoutRecord(path, lower));
        continue;
      }
      const upper = lstatOrNull(layer.upperPath(path));
      if (upper === null) continue;
      if (core.format === "chardev" && isWhiteoutInfo(upper)) {
        records.push(whiteoutRecord(path, lower));
        continue;
      }
      const kind = kindOf(upper);
      if (lower === null) {
        records.push({ path, status: "added", kind, upper, lower });
        if (kind === "dir") await visit(path, false);
      } else if (kind === "dir" && lower.isDirectory) {
        await visit(path, true);
      } else if (kind === "dir") {
        records.push({ path, status: "modified", kind, upper, lower });
        await visit(path, false);
      } else {
        const same = kindOf(lower) === kind && (await sameContent(core, path, upper, lower));
        records.push({ path, status: same ? "same" : "modified", kind, upper, lower });
      }
    }
  };
  await visit("", true);
  return records;
}

function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

function whiteoutRecord(path: string, lower: Deno.FileInfo | null): UpperRecord {
  return lower === null
    ? { path, status: "stale", kind: "other", upper: null, lower }
    : { path, status: "deleted", kind: kindOf(lower), upper: null, lower };
}

async function sameContent(
  core: OverlayCore,
  path: string,
  upper: Deno.FileInfo,
  lower: Deno.FileInfo,
): Promise<boolean> {
  const { layer } = core;
  if (upper.isSymlink) {
    return (await Deno.readLink(layer.upperPath(path))) ===
      (await Deno.readLink(layer.lowerPath(path)));
  }
  if (!upper.isFile || upper.size !== lower.size) return false;
  const [a, b] = await Promise.all([
    Deno.readFile(layer.upperPath(path)),
    Deno.readFile(layer.lowerPath(path)),
  ]);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `path` is at or below one of `selection` (all paths when null). */
export function selected(path: string, selection: readonly string[] | null): boolean {
  if (selection === null) return true;
  return selection.some((s) => s === "" || path === s || path.startsWith(`${s}/`));
}

/** The changes of the overlay, as {@link OverlayVfs.diff} returns them. */
export async function diffOverlay(
  core: OverlayCore,
  selection: readonly string[] | null,
  options: DiffOptions,
): Promise<VfsChange[]> {
  const changes: VfsChange[] = [];
  for (const record of await scanUpper(core)) {
    if (record.status === "same" || record.status === "stale") continue;
    if (!selected(record.path, selection)) continue;
    const change: VfsChange = { path: record.path, change: record.status, kind: record.kind };
    const { upper, lower } = record;
    if (record.status === "modified" && lower !== null && kindOf(lower) !== record.kind) {
      change.previousKind = kindOf(lower);
    }
    if (upper !== null && upper.isFile) change.size = upper.size;
    if (lower !== null && lower.isFile && record.status !== "added") {
      change.previousSize = lower.size;
    }
    if (upper !== null && upper.isSymlink) {
      change.target = await Deno.readLink(core.layer.upperPath(record.path));
    }
    if (options.text) {
      const text = await textDiff(core, record);
      if (text !== null) change.text = text;
    }
    changes.push(change);
  }
  return changes;
}

async function textDiff(core: OverlayCore, record: UpperRecord): Promise<string | null> {
  const { upper, lower, path } = record;
  if (upper?.isFile !== true && lower?.isFile !== true) return null;
  const before = lower !== null && record.status !== "added"
    ? await readText(core.layer.lowerPath(path), lower)
    : "";
  const after = upper !== null ? await readText(core.layer.upperPath(path), upper) : "";
  if (before === null || after === null) return null;
  return unifiedDiff(before, after, {
    fromLabel: lower !== null && record.status !== "added" && lower.isFile
      ? `a/${path}`
      : "/dev/null",
    toLabel: upper !== null && upper.isFile ? `b/${path}` : "/dev/null",
  });
}

/** The file's text when it is a regular file of at most 64 KiB of UTF-8 without NUL. */
async function readText(host: string, info: Deno.FileInfo): Promise<string | null> {
  if (info.isDirectory) return "";
  if (!info.isFile || info.size > TEXT_LIMIT) return null;
  const bytes = await Deno.readFile(host);
  if (bytes.includes(0)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}
