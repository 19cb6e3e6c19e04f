/**
 * Preparing one sandboxed command of a session: its directory under the session's overlay
 * dir (`cmd/<id>/{root,upper,work}`, the env file, the mask device), the paths to mask, the
 * host paths to bind, and the {@link SandboxPlan} the setup script is built from. Also the
 * recovery of command dirs a crash left behind, and their removal.
 *
 * @module
 */
import { join } from "node:path";
import { systemClock } from "../clock.ts";
import type { OverlayVfs } from "../vfs/mod.ts";
import { makeWhiteout } from "../vfs/mod.ts";
import { readMountInfo, remountsFor } from "./_mountinfo.ts";
import {
  envScript,
  ETC_SECRETS,
  OVERLAY_UNSAFE,
  type PlanBind,
  type SandboxPlan,
  SYSTEM_PATHS,
  type ViewEntry,
} from "./_script.ts";
import { SandboxCode, SandboxError } from "./errors.ts";
import { findMaskedPaths } from "./mask_paths.ts";
import { commandEnv, type SandboxCommand, type SandboxOptions } from "./sandbox_command.ts";

/** The default size of the private `/tmp`. */
export const DEFAULT_TMP_BYTES = 256 * 1024 * 1024;

/** A prepared command: its plan and where its files are. */
export interface Prepared {
  /** The plan the setup script is built from. */
  readonly plan: SandboxPlan;
  /** `<session>/cmd/<id>`. */
  readonly cmdDir: string;
  /** The command's upper dir (folded when it exits). */
  readonly upper: string;
  /** Workspace-relative paths masked in the view. */
  readonly masked: readonly string[];
}

let counter = 0;

/** `<session>/cmd`: where command dirs live. */
export function commandsDir(overlay: OverlayVfs): string {
  return join(overlay.sessionDir, "cmd");
}

function unsafePath(path: string, field: string): void {
  if (OVERLAY_UNSAFE.test(path)) {
    throw new SandboxError(
      SandboxCode.SANDBOX_PATH_UNSUPPORTED,
      `Cannot sandbox over ${
        JSON.stringify(path)
      }: the ${field} path holds ",", ":", "\\" or a newline, which overlayfs mount options cannot carry: move it`,
      { data: { path, field } },
    );
  }
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch {
    return null;
  }
}

function realOrNull(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

function under(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/** Resolves the cwd through the overlay to an absolute directory inside the workspace. */
async function resolveCwd(overlay: OverlayVfs, cwd: string | undefined): Promise<string> {
  const root = overlay.lowerRoot;
  let resolved;
  try {
    resolved = await overlay.resolve(cwd ?? "");
  } catch (cause) {
    throw new SandboxError(
      SandboxCode.SANDBOX_CWD_INVALID,
      `Invalid working directory ${JSON.stringify(cwd)}: ${(cause as Error).message}`,
      { data: { path: cwd }, cause },
    );
  }
  if (resolved.kind !== "dir") {
    throw new SandboxError(
      SandboxCode.SANDBOX_CWD_INVALID,
      `Invalid working directory ${JSON.stringify(cwd)}: ${
        resolved.kind === null ? "it does not exist" : "it is not a directory"
      } in the workspace view`,
      { data: { path: cwd } },
    );
  }
  return resolved.path === "" ? root : `${root}/${resolved.path}`;
}

/**
 * The working directory of an unsandboxed command: `cwd` (a workspace path) as a real host
 * directory inside the workspace itself (such a command sees the workspace, not the overlay).
 */
export function resolveDirectCwd(root: string, cwd: string | undefined): string {
  const rel = (cwd ?? "").replace(/^workspace:\/\//, "");
  const joined = rel.startsWith("/") ? rel : rel === "" ? root : `${root}/${rel}`;
  const real = realOrNull(joined);
  const info = real === null ? null : lstatOrNull(real);
  if (real === null || !under(real, root) || !info?.isDirectory) {
    throw new SandboxError(
      SandboxCode.SANDBOX_CWD_INVALID,
      `Invalid working directory ${JSON.stringify(cwd)}: not a directory inside the workspace`,
      { data: { path: cwd } },
    );
  }
  return real;
}

/**
 * The entries of a narrowed workspace view ({@link SandboxOptions.workspacePaths}): each path
 * canonical through the overlay (a symlink is not followed: it is left out, as is a path that
 * does not exist), nested ones dropped; undefined when the whole workspace is shown.
 */
async function viewEntries(
  overlay: OverlayVfs,
  paths: readonly string[] | undefined,
): Promise<ViewEntry[] | undefined> {
  if (paths === undefined) return undefined;
  const found: ViewEntry[] = [];
  for (const raw of paths) {
    const rel = raw.replace(/^workspace:\/\//, "").split("/").filter((x) => x !== "" && x !== ".")
      .join("/");
    if (rel === "") return undefined;
    if (rel.split("/").includes("..")) continue;
    let resolved;
    try {
      resolved = await overlay.resolve(rel, { followFinal: false });
    } catch {
      continue; // a parent is missing or leaves the workspace: nothing to show
    }
    if (resolved.kind !== "dir" && resolved.kind !== "file") continue;
    found.push({ path: resolved.path, kind: resolved.kind });
  }
  const sorted = found.sort((a, b) => a.path.localeCompare(b.path));
  return sorted.filter((e) =>
    !sorted.some((o) => o !== e && o.kind === "dir" && e.path.startsWith(`${o.path}/`)) &&
    sorted.findIndex((o) => o.path === e.path) === sorted.indexOf(e)
  );
}

/** The binds of a plan: system dirs, then the caller's read-only and writable paths. */
function planBinds(options: SandboxOptions): PlanBind[] {
  const mounts = readMountInfo();
  const wanted = new Map<string, boolean>(); // real path → writable
  for (const path of SYSTEM_PATHS) wanted.set(path, false);
  for (
    const [list, writable] of [[options.readOnlyPaths, false], [
      options.writablePaths,
      true,
    ]] as const
  ) {
    for (const raw of list ?? []) {
      const real = realOrNull(raw);
      if (real === null) continue;
      unsafePath(real, writable ? "writable" : "read-only");
      wanted.set(real, writable || (wanted.get(real) ?? false));
    }
  }
  const binds: PlanBind[] = [];
  const readOnlyDirs: string[] = [];
  for (const path of [...wanted.keys()].sort()) {
    const writable = wanted.get(path)!;
    if (!writable && readOnlyDirs.some((dir) => under(path, dir))) continue; // already visible
    const info = lstatOrNull(path);
    if (info === null) continue;
    if (info.isSymlink) {
      binds.push({ kind: "symlink", path, target: Deno.readLinkSync(path) });
      continue;
    }
    const kind = info.isDirectory ? "dir" : "file";
    binds.push({ kind, path, remounts: remountsFor(path, mounts, !writable) });
    if (!writable && kind === "dir") readOnlyDirs.push(path);
  }
  return binds;
}

/** Masks outside the workspace: `/etc` secrets, `/etc` under the policy, the hidden paths. */
function outsideMasks(
  binds: readonly PlanBind[],
  options: SandboxOptions,
  policy: SandboxOptions["policy"],
  workspace: string,
): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const visible = (path: string) =>
    under(path, workspace) || binds.some((b) => b.kind !== "symlink" && under(path, b.path));
  for (const raw of [...ETC_SECRETS, ...(options.hidePaths ?? [])]) {
    const real = realOrNull(raw);
    if (real === null || !visible(real)) continue;
    const info = lstatOrNull(real);
    if (info === null) continue;
    (info.isDirectory ? dirs : files).push(real);
  }
  if (policy !== undefined && binds.some((b) => b.path === "/etc" && b.kind === "dir")) {
    const found = findMaskedPaths(["/etc"], {
      root: "/etc",
      policy,
      maxEntries: options.maxMaskEntries,
    });
    files.push(...found.files);
    dirs.push(...found.dirs);
  }
  return { files, dirs };
}

/** Drops paths that lie inside a masked directory (they are hidden already). */
function prune(files: string[], dirs: string[]): { files: string[]; dirs: string[] } {
  const sortedDirs = [...new Set(dirs)].sort();
  const keptDirs = sortedDirs.filter((d) => !sortedDirs.some((o) => o !== d && under(d, o)));
  const keptFiles = [...new Set(files)].sort().filter((f) => !keptDirs.some((d) => under(f, d)));
  return { files: keptFiles, dirs: keptDirs };
}

/**
 * Prepares a command of the session of `options.overlay` (the caller holds its lock): makes
 * `cmd/<id>/` with `root/`, `upper/`, `work/`, the env file (0600) and the mask device, and
 * returns the plan.
 */
export async function prepareCommand(
  command: SandboxCommand,
  options: SandboxOptions,
): Promise<Prepared> {
  const overlay = options.overlay;
  if (overlay.whiteoutFormat !== "chardev") {
    throw new SandboxError(
      SandboxCode.SANDBOX_WHITEOUT_FORMAT,
      `Cannot mount the overlay of session dir "${overlay.sessionDir}": it writes "${overlay.whiteoutFormat}" whiteouts, which overlayfs cannot stack: run the daemon with --allow-ffi (or with mknod on PATH) and reopen the session`,
      { data: { path: overlay.sessionDir, format: overlay.whiteoutFormat } },
    );
  }
  const workspace = overlay.lowerRoot;
  unsafePath(workspace, "workspace");
  unsafePath(overlay.upperDir, "session overlay");
  if (under(overlay.sessionDir, workspace)) {
    throw new SandboxError(
      SandboxCode.SANDBOX_PATH_UNSUPPORTED,
      `Cannot sandbox over workspace "${workspace}": the session overlay "${overlay.sessionDir}" lies inside it and overlayfs refuses overlapping layers: move ASTRID_HOME out of the workspace`,
      { data: { path: overlay.sessionDir, field: "session overlay" } },
    );
  }
  const cwd = await resolveCwd(overlay, command.cwd);
  const policy = options.policy;
  const inside = policy === undefined
    ? { files: [], dirs: [] }
    : findMaskedPaths([overlay.upperDir, workspace], {
      root: workspace,
      policy,
      maxEntries: options.maxMaskEntries,
    });
  const view = await viewEntries(overlay, options.workspacePaths);
  const shown = (path: string) =>
    view === undefined || !under(path, workspace) ||
    view.some((e) => under(path, `${workspace}/${e.path}`));
  const binds = planBinds(options);
  const outside = outsideMasks(binds, options, policy, workspace);
  const masks = prune(
    [...inside.files, ...outside.files].filter(shown),
    [...inside.dirs, ...outside.dirs].filter(shown),
  );
  const now = (options.clock ?? systemClock).now();
  const id = `${now.toString(36).padStart(9, "0")}-${(++counter).toString(36)}-${
    crypto.randomUUID().slice(0, 8)
  }`;
  const cmdDir = join(commandsDir(overlay), id);
  unsafePath(cmdDir, "command");
  await Deno.mkdir(cmdDir, { recursive: true, mode: 0o700 });
  for (const d of ["root", "upper", "work", ...(view === undefined ? [] : ["view"])]) {
    await Deno.mkdir(join(cmdDir, d), { mode: 0o700 });
  }
  await Deno.writeTextFile(join(cmdDir, "env"), envScript(commandEnv(command.env)), {
    mode: 0o600,
  });
  await makeWhiteout(join(cmdDir, "mask"), "chardev");
  const uid = Deno.uid() ?? 0;
  const gid = Deno.gid() ?? 0;
  const plan: SandboxPlan = {
    cmdDir,
    workspace,
    lowers: [overlay.upperDir, workspace],
    cwd,
    binds,
    tmpBytes: options.tmpBytes ?? DEFAULT_TMP_BYTES,
    ...(view === undefined ? {} : { view }),
    maskFiles: masks.files,
    maskDirs: masks.dirs,
    network: options.network === true,
    uid,
    gid,
  };
  const masked = [...masks.files, ...masks.dirs]
    .filter((p) => under(p, workspace) && p !== workspace)
    .map((p) => p.slice(workspace.length + 1))
    .sort();
  return { plan, cmdDir, upper: join(cmdDir, "upper"), masked };
}

/** The last lines of a command's setup log (what failed), or a placeholder. */
export async function setupLogTail(cmdDir: string, stderr: string): Promise<string> {
  let log = "";
  try {
    log = await Deno.readTextFile(join(cmdDir, "setup.log"));
  } catch {
    // The script never ran.
  }
  const text = `${log}\n${stderr}`.trim().split("\n").filter((l) => l.trim() !== "");
  return text.slice(-6).join("; ").slice(0, 1000) || "no output";
}

/** Removes a command dir (overlayfs leaves `work/work` mode 000). */
export async function removeCommandDir(dir: string): Promise<void> {
  const open = async (path: string): Promise<void> => {
    const info = await Deno.lstat(path).catch(() => null);
    if (info === null || !info.isDirectory) return;
    await Deno.chmod(path, 0o700).catch(() => {});
    for await (const entry of Deno.readDir(path)) await open(`${path}/${entry.name}`);
  };
  await open(dir).catch(() => {});
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/**
 * Folds and removes command dirs a crash left behind (the caller holds the session lock, so
 * none of them belongs to a live command of this process). Returns the dirs folded.
 */
export async function recoverCommands(overlay: OverlayVfs): Promise<string[]> {
  const base = commandsDir(overlay);
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(base)) if (entry.isDirectory) names.push(entry.name);
  } catch {
    return [];
  }
  const folded: string[] = [];
  for (const name of names.sort()) {
    const dir = join(base, name);
    const upper = join(dir, "upper");
    if (lstatOrNull(upper)?.isDirectory) {
      try {
        await overlay.foldUpper(upper);
      } catch (cause) {
        throw new SandboxError(
          SandboxCode.SANDBOX_FOLD_FAILED,
          `Cannot fold the writes an earlier command left in "${upper}": ${
            (cause as Error).message
          } (kept; fix or remove it)`,
          { data: { path: upper }, cause },
        );
      }
      folded.push(dir);
    }
    await removeCommandDir(dir);
  }
  return folded;
}
