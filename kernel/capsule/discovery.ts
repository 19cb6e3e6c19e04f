/**
 * Finding installed capsules: the principal's `home/{principal}/.local/capsules/<name>/` and the
 * workspace's `<workspace>/.astrid/capsules/<name>/`, each an install record
 * (`Capsule.toml` + `meta.json`). A broken record is reported and skipped; the others load.
 *
 * When both scopes hold a capsule of the same name, the **user's wins**: a workspace is written
 * by whoever wrote the repository, and (as with the workspace config layer) it may not replace
 * what the operator installed. The workspace copy is reported in `shadowed`.
 *
 * {@link readInstalledWasm} returns a capsule's module only when the record pins a hash, the
 * manifest agrees with it, and the stored bytes hash to it: no hash or a wrong hash, no load.
 *
 * @module
 */
import { join } from "node:path";
import type { AstridHome } from "../home/mod.ts";
import type { PrincipalId } from "../identity/mod.ts";
import type { BinaryStore } from "./binary_store.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import { CAPSULE_NAME_RE } from "./manifest.ts";
import { type InstallRecord, readInstallRecord } from "./install_record.ts";

/** Where a capsule was installed. */
export type CapsuleScope = "user" | "workspace";

/** An installed capsule found by {@link discoverCapsules}. */
export interface DiscoveredCapsule extends InstallRecord {
  /** The capsule's name. */
  readonly name: string;
  /** The scope it was found in. */
  readonly scope: CapsuleScope;
}

/** A directory that looked like an install record but could not be used. */
export interface DiscoveryProblem {
  /** The directory. */
  readonly dir: string;
  /** The scope it was in. */
  readonly scope: CapsuleScope;
  /** Why it was skipped (`INSTALL_RECORD_INVALID`, `MANIFEST_INVALID`, …). */
  readonly error: CapsuleError;
}

/** The result of {@link discoverCapsules}. */
export interface Discovery {
  /** Capsules to consider for loading, one per name, sorted by name. */
  readonly capsules: readonly DiscoveredCapsule[];
  /** Workspace capsules hidden by a user capsule of the same name. */
  readonly shadowed: readonly DiscoveredCapsule[];
  /** Records that were skipped, sorted by directory. */
  readonly problems: readonly DiscoveryProblem[];
}

/** Options of {@link discoverCapsules}. */
export interface DiscoverOptions {
  /** The principal whose capsules are listed. */
  readonly principal: PrincipalId;
  /** The workspace root (the directory holding `.astrid/`), if any. */
  readonly workspace?: string;
}

/** The user scope's capsules directory of `principal`. */
export function userCapsulesDir(home: AstridHome, principal: PrincipalId): string {
  return join(home.principalDir(principal), ".local", "capsules");
}

/** The workspace scope's capsules directory. */
export function workspaceCapsulesDir(workspace: string): string {
  return join(workspace, ".astrid", "capsules");
}

async function scan(root: string, scope: CapsuleScope): Promise<{
  found: DiscoveredCapsule[];
  problems: DiscoveryProblem[];
}> {
  const found: DiscoveredCapsule[] = [];
  const problems: DiscoveryProblem[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { found, problems };
    throw err;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue; // temporary dirs of an install in progress
    const dir = join(root, e.name);
    const fail = (message: string) =>
      problems.push({
        dir,
        scope,
        error: new CapsuleError(
          CapsuleCode.INSTALL_RECORD_INVALID,
          `Invalid install record "${dir}": ${message}`,
          {
            data: { dir },
          },
        ),
      });
    if (e.isSymlink) {
      fail("it is a symlink; install records are plain directories");
      continue;
    }
    if (!e.isDirectory) continue;
    if (!CAPSULE_NAME_RE.test(e.name)) {
      fail(`"${e.name}" is not a capsule name`);
      continue;
    }
    try {
      const record = await readInstallRecord(dir);
      found.push({ ...record, name: record.manifest.package.name, scope });
    } catch (err) {
      if (!(err instanceof CapsuleError)) throw err;
      problems.push({ dir, scope, error: err });
    }
  }
  return { found, problems };
}

/** Lists the capsules installed for `options.principal` and in `options.workspace`. */
export async function discoverCapsules(
  home: AstridHome,
  options: DiscoverOptions,
): Promise<Discovery> {
  const user = await scan(userCapsulesDir(home, options.principal), "user");
  const ws = options.workspace !== undefined
    ? await scan(workspaceCapsulesDir(options.workspace), "workspace")
    : { found: [], problems: [] };
  const byName = new Map<string, DiscoveredCapsule>();
  for (const c of user.found) byName.set(c.name, c);
  const shadowed: DiscoveredCapsule[] = [];
  for (const c of ws.found) {
    if (byName.has(c.name)) shadowed.push(c);
    else byName.set(c.name, c);
  }
  const capsules = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const problems = [...user.problems, ...ws.problems].sort((a, b) => (a.dir < b.dir ? -1 : 1));
  return { capsules, shadowed, problems };
}

/**
 * Returns the module of an installed capsule, verified: the record must pin `wasm_hash`, a hash
 * in the manifest's `[wasm]` must equal it, and the stored bytes must hash to it.
 */
export async function readInstalledWasm(
  store: BinaryStore,
  record: InstallRecord,
): Promise<Uint8Array> {
  const name = record.manifest.package.name;
  if (!record.manifest.wasm) {
    throw new CapsuleError(
      CapsuleCode.INSTALL_RECORD_INVALID,
      `Capsule "${name}" has no WebAssembly module: its manifest has no [wasm]`,
      { data: { dir: record.dir, name, field: "wasm" } },
    );
  }
  const pinned = record.meta.wasm_hash;
  if (pinned === null || pinned === "") {
    throw new CapsuleError(
      CapsuleCode.BINARY_BAD_HASH,
      `Refusing to load capsule "${name}": its install record pins no wasm_hash; reinstall the capsule`,
      { data: { dir: record.dir, name } },
    );
  }
  const declared = record.manifest.wasm.hash;
  if (declared !== undefined && declared !== pinned) {
    throw new CapsuleError(
      CapsuleCode.BINARY_HASH_MISMATCH,
      `Refusing to load capsule "${name}": the manifest pins ${declared} but the install record ${pinned}`,
      { data: { dir: record.dir, name, hash: pinned, actual: declared } },
    );
  }
  return await store.get(pinned);
}
