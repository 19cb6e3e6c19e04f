/**
 * What the capsule verbs share: which home, principal and scope a command acts on, the
 * workspace root (the nearest ancestor holding `.astrid/`, else the git root, else the current
 * directory, as DESIGN §3a says), the capsules visible there, `--env KEY=VALUE` flags, and
 * asking a running daemon to reload after a change.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import {
  type CapsuleManifest,
  type CapsuleScope,
  discoverCapsules,
  type Discovery,
  parseEnvText,
} from "../kernel/capsule/mod.ts";
import { DaemonCode, DaemonError, runPaths, WireCode } from "../kernel/daemon/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { DEFAULT_PRINCIPAL, type PrincipalId, principalId } from "../kernel/identity/mod.ts";
import { connectRunning } from "./ensure_daemon.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Where a capsule command acts. */
export interface CapsuleTarget {
  /** The home. */
  readonly home: AstridHome;
  /** The principal (`--principal`, default `default`). */
  readonly principal: PrincipalId;
  /** `workspace` with `--workspace`, else `user`. */
  readonly scope: CapsuleScope;
  /** The workspace root (always found, used for listing; installs go there only with `--workspace`). */
  readonly workspace: string;
}

async function isDir(path: string): Promise<boolean> {
  return await Deno.stat(path).then((i) => i.isDirectory, () => false);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** The workspace root of `cwd`: nearest ancestor with `.astrid/`, else the git root, else `cwd`. */
export async function findWorkspaceRoot(cwd: string = Deno.cwd()): Promise<string> {
  const start = resolve(cwd);
  for (let dir = start;; dir = dirname(dir)) {
    if (await isDir(join(dir, ".astrid"))) return dir;
    if (dirname(dir) === dir) break;
  }
  for (let dir = start;; dir = dirname(dir)) {
    if (await exists(join(dir, ".git"))) return dir;
    if (dirname(dir) === dir) break;
  }
  return start;
}

/** Opens the home and resolves principal and scope from the parsed flags. */
export async function openTarget(
  values: { principal?: string; workspace?: boolean },
): Promise<CapsuleTarget> {
  const home = await AstridHome.open();
  const principal = principalId(values.principal ?? DEFAULT_PRINCIPAL);
  await home.ensurePrincipal(principal);
  return {
    home,
    principal,
    scope: values.workspace ? "workspace" : "user",
    workspace: await findWorkspaceRoot(),
  };
}

/** The capsules visible to the target: the principal's and the workspace's. */
export async function visibleCapsules(target: CapsuleTarget): Promise<Discovery> {
  return await discoverCapsules(target.home, {
    principal: target.principal,
    workspace: target.workspace,
  });
}

/** Parses `--env KEY=VALUE` flags against the manifest's `[env]`; an unknown key is a usage error. */
export function parseEnvFlags(
  flags: readonly string[],
  manifest: CapsuleManifest,
): Record<string, string | readonly string[]> {
  const fields = manifest.env;
  const capsule = manifest.package.name;
  const out: Record<string, string | readonly string[]> = {};
  for (const flag of flags) {
    const eq = flag.indexOf("=");
    if (eq <= 0) {
      throw new UsageError("capsule", `Invalid --env "${flag}": write --env KEY=VALUE`);
    }
    const key = flag.slice(0, eq);
    const field = fields.find((f) => f.name === key);
    if (field === undefined) {
      const known = fields.map((f) => f.name).join(", ") || "none";
      throw new UsageError(
        "capsule",
        `Invalid --env "${key}": capsule "${capsule}" has no such [env] field (fields: ${known})`,
      );
    }
    out[key] = parseEnvText(field, flag.slice(eq + 1));
  }
  return out;
}

/**
 * Asks a running daemon to reload its capsules and says what happened; when none runs, says the
 * change applies at the next start. Never fails the command: the install itself succeeded.
 */
export async function reloadDaemon(home: AstridHome, io: CliIo): Promise<void> {
  const paths = runPaths(home.root);
  let client;
  try {
    client = await connectRunning(paths, { client: "cli" });
  } catch (err) {
    io.err(`warning: Cannot reach the daemon to reload capsules: ${(err as Error).message}`);
    return;
  }
  if (client === null) {
    io.out("No daemon is running: capsules load when it next starts");
    return;
  }
  try {
    const report = await client.call<{
      loaded?: string[];
      failed?: { name: string; error: string }[];
    }>("management", { request: "ReloadCapsules" });
    const loaded = report?.loaded ?? [];
    io.out(`Daemon reloaded: ${loaded.length} capsule${loaded.length === 1 ? "" : "s"} loaded`);
    for (const f of report?.failed ?? []) {
      io.err(`warning: Capsule "${f.name}" failed to load: ${f.error}`);
    }
  } catch (err) {
    if (
      err instanceof DaemonError && err.code === DaemonCode.DAEMON_REMOTE &&
      err.data?.code === WireCode.RATE_LIMITED
    ) {
      const details = err.data.details as { retry_after_ms?: number } | undefined;
      const secs = Math.ceil((details?.retry_after_ms ?? 60_000) / 1000);
      io.err(
        `warning: The daemon refused the reload (at most 5 a minute): the change loads when it next reloads (retry in ${secs} s) or restarts (astrid stop)`,
      );
    } else {
      io.err(`warning: The daemon could not reload capsules: ${(err as Error).message}`);
    }
  } finally {
    await client.close();
  }
}

/** The first 12 hex digits of a `blake3:` hash, or `-`. */
export function shortHash(hash: string | null | undefined): string {
  return hash ? hash.replace(/^blake3:/, "").slice(0, 12) : "-";
}
