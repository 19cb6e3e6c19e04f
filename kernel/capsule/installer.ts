/**
 * Installing and removing capsules: the one call `astrid capsule install`, `astrid capsule
 * update` and `astrid init` share, and the checks they make first.
 *
 * {@link installCapsule} reads a `.capsule` archive (verifying `HASHES` and the manifest), pins
 * the module's hash from its own bytes, stores it once in `bin/<blake3>.wasm`, and writes the
 * install record in a staging directory beside the target (`.staging-<random>/<name>/`: static
 * files, then `Capsule.toml`, then `meta.json` last) which is renamed into place; a record that
 * already holds the same content is left alone. A replaced record's binary is deleted when no
 * record references it any more. The principal's `[env]` values are checked
 * before anything is written and stored 0600 (`install_env.ts`).
 *
 * {@link uninstallCapsule} removes a record and deletes its binary when no other record
 * references the hash: every principal's records and every workspace capsules directory this
 * home ever installed into (listed in `var/capsule_workspaces.json`) are counted.
 *
 * {@link exportConflicts} and {@link dependentsOf} are the questions an installer asks before
 * replacing or removing: who else provides what this capsule provides, and who needs what only
 * this capsule provides.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { Clock } from "../clock.ts";
import { type AstridHome, atomicWrite, ensureDir } from "../home/mod.ts";
import type { PrincipalId } from "../identity/mod.ts";
import { BinaryStore } from "./binary_store.ts";
import { type CapsuleArchive, readArchive } from "./capsule_archive.ts";
import { type CapsuleScope, userCapsulesDir, workspaceCapsulesDir } from "./discovery.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import { checkCapsuleEnv, type EnvValues, readCapsuleEnv, writeCapsuleEnv } from "./install_env.ts";
import {
  type InstallMeta,
  type InstallRecord,
  readInstallRecord,
  RECORD_MANIFEST,
  RECORD_META,
  writeInstallRecord,
} from "./install_record.ts";
import type { CapsuleManifest } from "./manifest.ts";
import { VersionRange } from "./semver.ts";
import { effectiveExports, interfaceMatches } from "./toposort.ts";

const q = JSON.stringify;

/** Where a capsule to install comes from, as {@link resolveCapsuleSource} finds it. */
export type CapsuleSource =
  | {
    /** A built archive. */
    readonly kind: "archive";
    /** The `.capsule` file. */
    readonly path: string;
    /** The capsule directory it was found in (`<dir>/dist/<name>.capsule`), if any. */
    readonly dir?: string;
    /** True when the directory's `Capsule.toml` is newer than the archive (rebuild it). */
    readonly stale: boolean;
  }
  | {
    /** A capsule source directory without a built archive: it needs `astrid build`. */
    readonly kind: "source";
    /** The directory holding `Capsule.toml`. */
    readonly dir: string;
  };

/** True for a registry reference (`@org/name`) or a URL: sources that need the network. */
export function isRemoteSource(source: string): boolean {
  return /^@[^/\s]+\/[^/\s]+/.test(source) || /^[a-z][a-z0-9+.-]*:\/\//i.test(source);
}

function sourceError(path: string, reason: string): CapsuleError {
  return new CapsuleError(
    CapsuleCode.INSTALL_SOURCE_INVALID,
    `Cannot install from ${q(path)}: ${reason}`,
    { data: { path, reason } },
  );
}

/**
 * Finds the archive to install from `path` (relative paths against `cwd`): a `.capsule` file, or
 * a capsule directory holding one in `dist/` (`<name>.capsule` when `Capsule.toml` names it,
 * else the only one), or a source directory with `Capsule.toml` and no archive (`kind:
 * "source"`). A registry reference or URL, and anything else, is `INSTALL_SOURCE_INVALID`.
 */
export async function resolveCapsuleSource(
  path: string,
  options: { cwd?: string } = {},
): Promise<CapsuleSource> {
  if (isRemoteSource(path)) {
    throw sourceError(
      path,
      "remote sources are not supported offline; download or build the capsule and give its .capsule file or directory",
    );
  }
  const full = isAbsolute(path) ? resolve(path) : resolve(options.cwd ?? Deno.cwd(), path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(full);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw sourceError(path, "no such file or directory");
    throw err;
  }
  if (info.isFile) {
    if (!full.endsWith(".capsule")) {
      throw sourceError(path, "not a .capsule archive or a capsule directory");
    }
    return { kind: "archive", path: full, stale: false };
  }
  if (!info.isDirectory) throw sourceError(path, "not a file or directory");
  const manifestPath = join(full, RECORD_MANIFEST);
  const manifestInfo = await Deno.stat(manifestPath).catch(() => undefined);
  const archives: string[] = [];
  try {
    for await (const e of Deno.readDir(join(full, "dist"))) {
      if (e.isFile && e.name.endsWith(".capsule")) archives.push(e.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  archives.sort();
  if (archives.length === 0) {
    if (manifestInfo?.isFile) return { kind: "source", dir: full };
    throw sourceError(path, "the directory has neither dist/*.capsule nor Capsule.toml");
  }
  let chosen = archives.length === 1 ? archives[0] : undefined;
  if (manifestInfo?.isFile) {
    const name = /^\s*name\s*=\s*"([a-z0-9][a-z0-9-]*)"/m.exec(
      await Deno.readTextFile(manifestPath),
    )?.[1];
    if (name !== undefined && archives.includes(`${name}.capsule`)) chosen = `${name}.capsule`;
  }
  if (chosen === undefined) {
    throw sourceError(
      path,
      `dist/ holds several archives (${archives.join(", ")}); give the .capsule file itself`,
    );
  }
  const archivePath = join(full, "dist", chosen);
  const archiveInfo = await Deno.stat(archivePath);
  const stale = manifestInfo?.mtime != null && archiveInfo.mtime != null &&
    manifestInfo.mtime.getTime() > archiveInfo.mtime.getTime();
  return { kind: "archive", path: archivePath, dir: full, stale };
}

/** Options of {@link installCapsule}. */
export interface InstallOptions {
  /** The Astrid home (`bin/`, `var/`, the principal's tree). */
  readonly home: AstridHome;
  /** The principal installing: its records (user scope) and its `[env]` values. */
  readonly principal: PrincipalId;
  /** `user` (`home/{principal}/.local/capsules/`) or `workspace` (`<workspace>/.astrid/capsules/`). */
  readonly scope: CapsuleScope;
  /** The workspace root, for the workspace scope. */
  readonly workspace?: string;
  /** Where the capsule came from, recorded in `meta.json` (`update` re-reads it). */
  readonly source: string;
  /** The install time comes from here. */
  readonly clock: Clock;
  /**
   * The `[env]` values to store, replacing stored ones. When absent, the stored values (only the
   * fields this version declares) must satisfy the manifest and are kept.
   */
  readonly env?: EnvValues;
  /** A pinned module hash (`Distro.lock`); another module is refused. `null` pins "no module". */
  readonly expectWasmHash?: string | null;
}

/** What {@link installCapsule} did. */
export interface InstallResult {
  /** The record as installed. */
  readonly record: InstallRecord;
  /** `installed` (new), `updated` (a record of that name replaced) or `unchanged` (identical). */
  readonly status: "installed" | "updated" | "unchanged";
  /** The replaced record's metadata, for `updated` and `unchanged`. */
  readonly previous?: InstallMeta;
  /** The env file written, when values were stored. */
  readonly envPath?: string;
  /** The replaced record's binary, deleted because no record references it any more. */
  readonly collected?: string;
}

/** The capsules directory of a scope. */
export function capsulesDirFor(
  home: AstridHome,
  options: { principal: PrincipalId; scope: CapsuleScope; workspace?: string },
): string {
  if (options.scope === "user") return userCapsulesDir(home, options.principal);
  if (options.workspace === undefined) {
    throw new CapsuleError(
      CapsuleCode.INSTALL_SOURCE_INVALID,
      "The workspace scope needs a workspace root",
      { data: { reason: "no workspace" } },
    );
  }
  return workspaceCapsulesDir(options.workspace);
}

function randomSuffix(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(6)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** True when the record in `dir` holds exactly the archive's manifest, module and static files. */
async function sameContent(
  dir: string,
  record: InstallRecord,
  archive: CapsuleArchive,
): Promise<boolean> {
  if (record.manifestText !== archive.manifestText) return false;
  if (record.meta.wasm_hash !== (archive.wasmHash ?? null)) return false;
  const statics = archive.members.filter((m) => m.path.startsWith("static/"));
  const onDisk = await listFiles(join(dir, "static"), "static");
  if (onDisk.length !== statics.length) return false;
  for (const m of statics) {
    const bytes = await Deno.readFile(join(dir, m.path)).catch(() => undefined);
    if (bytes === undefined || bytes.length !== m.data.length) return false;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== m.data[i]) return false;
  }
  return true;
}

async function listFiles(dir: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const rel = `${prefix}/${e.name}`;
      if (e.isDirectory) out.push(...await listFiles(join(dir, e.name), rel));
      else out.push(rel);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out;
}

/**
 * Installs a capsule from an archive's bytes (verified here) or an archive already read with
 * `readArchive`; see the module doc. Throws `ARCHIVE_INVALID`, `BINARY_HASH_MISMATCH` (the
 * module differs from `expectWasmHash` or the manifest's `[wasm] hash`), `INSTALL_ENV_INVALID`,
 * or a home error when the disk fails; nothing is left half-written.
 */
export async function installCapsule(
  archive: Uint8Array | CapsuleArchive,
  options: InstallOptions,
): Promise<InstallResult> {
  const a = archive instanceof Uint8Array ? await readArchive(archive) : archive;
  const name = a.manifest.package.name;
  const wasmHash = a.wasmHash ?? null;
  if (options.expectWasmHash !== undefined && options.expectWasmHash !== wasmHash) {
    throw new CapsuleError(
      CapsuleCode.BINARY_HASH_MISMATCH,
      `Refusing capsule ${q(name)} from ${q(options.source)}: its module hashes to ${
        wasmHash ?? "nothing (no [wasm])"
      } but ${options.expectWasmHash ?? "no module"} is pinned`,
      { data: { name, hash: options.expectWasmHash ?? undefined, actual: wasmHash ?? undefined } },
    );
  }
  const declared = a.manifest.wasm?.hash;
  if (declared !== undefined && declared !== wasmHash) {
    throw new CapsuleError(
      CapsuleCode.BINARY_HASH_MISMATCH,
      `Refusing capsule ${
        q(name)
      }: its manifest pins ${declared} but the module hashes to ${wasmHash}`,
      { data: { name, hash: declared, actual: wasmHash ?? undefined } },
    );
  }
  const root = capsulesDirFor(options.home, options);
  const finalDir = join(root, name);

  // [env] first: a missing required value stops the install before anything is written.
  const env = options.env ??
    pickDeclared(
      a.manifest,
      await readCapsuleEnv(options.home, { principal: options.principal, capsule: name }),
    );
  checkCapsuleEnv(a.manifest, env);

  let previous: InstallRecord | undefined;
  if (await exists(join(finalDir, RECORD_META))) {
    previous = await readInstallRecord(finalDir).catch(() => undefined);
  }
  const store = new BinaryStore(options.home.bin);
  if (a.wasm) await store.put(a.wasm);
  const envPath = options.env !== undefined
    ? await writeCapsuleEnv(options.home, {
      principal: options.principal,
      manifest: a.manifest,
      values: options.env,
    })
    : undefined;
  if (options.scope === "workspace") await registerWorkspaceRoot(options.home, root);

  if (
    previous !== undefined && previous.meta.source === options.source &&
    await sameContent(finalDir, previous, a)
  ) {
    return {
      record: previous,
      status: "unchanged",
      previous: previous.meta,
      ...(envPath ? { envPath } : {}),
    };
  }

  await ensureDir(root);
  const stage = join(root, `.staging-${randomSuffix()}`);
  const staged = join(stage, name);
  let trash: string | undefined;
  try {
    await ensureDir(staged);
    for (const m of a.members) {
      if (!m.path.startsWith("static/")) continue;
      const target = join(staged, ...m.path.split("/"));
      await ensureDir(dirname(target));
      await atomicWrite(target, m.data, { mode: m.executable ? 0o755 : 0o644 });
    }
    const meta: InstallMeta = {
      name,
      version: a.manifest.package.version,
      wasm_hash: wasmHash,
      source: options.source,
      installed_at: new Date(options.clock.now()).toISOString(),
    };
    await writeInstallRecord(staged, { manifestText: a.manifestText, meta }); // meta.json last
    if (await exists(finalDir)) {
      trash = join(root, `.trash-${randomSuffix()}`);
      await Deno.rename(finalDir, trash);
    }
    try {
      await Deno.rename(staged, finalDir);
    } catch (err) {
      if (trash !== undefined) await Deno.rename(trash, finalDir).catch(() => {});
      trash = undefined;
      throw err;
    }
    await syncDir(root);
    const record = await readInstallRecord(finalDir);
    const old = previous?.meta.wasm_hash ?? null;
    let collected: string | undefined;
    if (
      old !== null && old !== wasmHash && (await binaryReferences(options.home, old)).length === 0
    ) {
      if (await store.remove(old)) collected = old;
    }
    return {
      record,
      status: previous !== undefined || trash !== undefined ? "updated" : "installed",
      ...(previous ? { previous: previous.meta } : {}),
      ...(envPath ? { envPath } : {}),
      ...(collected ? { collected } : {}),
    };
  } finally {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
    if (trash !== undefined) await Deno.remove(trash, { recursive: true }).catch(() => {});
  }
}

/** The stored values limited to the fields `manifest` declares (a field a new version dropped goes). */
export function pickDeclared(manifest: CapsuleManifest, values: EnvValues): EnvValues {
  const names = new Set(manifest.env.map((f) => f.name));
  return Object.fromEntries(Object.entries(values).filter(([k]) => names.has(k)));
}

async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is atomic.
  }
}

/** `var/capsule_workspaces.json`: every workspace capsules directory this home installed into. */
export function workspaceRootsPath(home: AstridHome): string {
  return join(home.var, "capsule_workspaces.json");
}

/** The workspace capsules directories recorded by installs, sorted. */
export async function workspaceRoots(home: AstridHome): Promise<string[]> {
  try {
    const raw: unknown = JSON.parse(await Deno.readTextFile(workspaceRootsPath(home)));
    return Array.isArray(raw) ? raw.filter((x): x is string => typeof x === "string").sort() : [];
  } catch {
    return [];
  }
}

async function registerWorkspaceRoot(home: AstridHome, dir: string): Promise<void> {
  const roots = await workspaceRoots(home);
  if (roots.includes(dir)) return;
  await atomicWrite(workspaceRootsPath(home), JSON.stringify([...roots, dir].sort(), null, 2), {
    mode: 0o600,
  });
}

/**
 * The record directories whose `meta.json` pins `hash`: every principal's user records and
 * every recorded workspace capsules directory. A record too broken to parse is skipped.
 */
export async function binaryReferences(home: AstridHome, hash: string): Promise<string[]> {
  const roots: string[] = [];
  try {
    for await (const p of Deno.readDir(join(home.root, "home"))) {
      if (p.isDirectory) roots.push(join(home.root, "home", p.name, ".local", "capsules"));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  roots.push(...await workspaceRoots(home));
  const out: string[] = [];
  for (const root of roots) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(root));
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      try {
        const meta = JSON.parse(await Deno.readTextFile(join(root, e.name, RECORD_META)));
        if (meta?.wasm_hash === hash) out.push(join(root, e.name));
      } catch {
        // no meta.json, or not JSON: references nothing
      }
    }
  }
  return out.sort();
}

/** What {@link uninstallCapsule} did. */
export interface UninstallResult {
  /** The removed record's directory. */
  readonly dir: string;
  /** Its metadata, when `meta.json` could be read. */
  readonly meta?: InstallMeta;
  /** True when the binary was deleted because no other record referenced it. */
  readonly binaryRemoved: boolean;
  /** Records still referencing the binary (when it was kept). */
  readonly binaryUsers: readonly string[];
}

/**
 * Removes the record of `name` in a scope, then deletes its binary from `bin/` when no other
 * record references the hash. A broken record is removed too. Throws `CAPSULE_NOT_INSTALLED`
 * when there is no such record.
 */
export async function uninstallCapsule(
  home: AstridHome,
  options: { principal: PrincipalId; scope: CapsuleScope; workspace?: string; name: string },
): Promise<UninstallResult> {
  const root = capsulesDirFor(home, options);
  const dir = join(root, options.name);
  const info = await Deno.lstat(dir).catch(() => undefined);
  if (info === undefined || basename(dir).startsWith(".")) {
    throw new CapsuleError(
      CapsuleCode.CAPSULE_NOT_INSTALLED,
      `Capsule ${q(options.name)} is not installed in ${root}`,
      { data: { name: options.name, dir: root } },
    );
  }
  let meta: InstallMeta | undefined;
  try {
    meta = (await readInstallRecord(dir)).meta;
  } catch {
    try {
      const raw = JSON.parse(await Deno.readTextFile(join(dir, RECORD_META)));
      if (typeof raw?.wasm_hash === "string") meta = raw as InstallMeta;
    } catch {
      // nothing pinned: nothing to collect
    }
  }
  const trash = join(root, `.trash-${randomSuffix()}`);
  await Deno.rename(dir, trash);
  await Deno.remove(trash, { recursive: true });
  await syncDir(root);
  const hash = meta?.wasm_hash ?? null;
  if (hash === null) {
    return { dir, ...(meta ? { meta } : {}), binaryRemoved: false, binaryUsers: [] };
  }
  const users = await binaryReferences(home, hash);
  if (users.length > 0) return { dir, meta: meta!, binaryRemoved: false, binaryUsers: users };
  const removed = await new BinaryStore(home.bin).remove(hash);
  return { dir, meta: meta!, binaryRemoved: removed, binaryUsers: [] };
}

/** An interface a new capsule exports that an installed one already exports. */
export interface ExportConflict {
  /** The installed capsule. */
  readonly capsule: string;
  /** The interface id both export (`astrid:llm`, `tool:read_file`). */
  readonly id: string;
  /** The version the installed capsule exports. */
  readonly version: string;
}

/**
 * What `manifest` exports (its `[exports]` and its tools) that another installed capsule
 * already exports. A capsule of the same name is not a conflict (it is being replaced); topics
 * a capsule publishes are not either (many capsules publish the same topic).
 */
export function exportConflicts(
  manifest: CapsuleManifest,
  installed: readonly CapsuleManifest[],
): ExportConflict[] {
  const mine = [
    ...manifest.exports.map((e) => e.id),
    ...manifest.tool.map((t) => `tool:${t.name}`),
  ];
  const out: ExportConflict[] = [];
  for (const other of installed) {
    if (other.package.name === manifest.package.name) continue;
    for (const e of effectiveExports(other)) {
      if (e.namespace === "topic") continue;
      if (mine.some((id) => interfaceMatches(id, e.id) || interfaceMatches(e.id, id))) {
        out.push({ capsule: other.package.name, id: e.id, version: e.version });
      }
    }
  }
  return out.sort((a, b) => (a.capsule + a.id < b.capsule + b.id ? -1 : 1));
}

/** An installed capsule that needs what only the capsule being removed provides. */
export interface Dependent {
  /** The dependent capsule. */
  readonly capsule: string;
  /** Its required import that would be left unmet. */
  readonly import: string;
  /** The import's version range. */
  readonly version: string;
}

/**
 * The required imports of `installed` capsules that `name` meets and no other installed capsule
 * does: what removing `name` would break. Optional imports never count.
 */
export function dependentsOf(name: string, installed: readonly CapsuleManifest[]): Dependent[] {
  const target = installed.find((m) => m.package.name === name);
  if (target === undefined) return [];
  const provides = (m: CapsuleManifest, id: string, range: VersionRange) =>
    effectiveExports(m).some((e) => interfaceMatches(id, e.id) && range.satisfiedBy(e.version));
  const out: Dependent[] = [];
  for (const m of installed) {
    if (m.package.name === name) continue;
    for (const imp of m.imports) {
      if (imp.optional) continue;
      const range = VersionRange.parse(imp.version);
      if (!provides(target, imp.id, range)) continue;
      const others = installed.some((o) =>
        o.package.name !== name && o.package.name !== m.package.name && provides(o, imp.id, range)
      );
      if (!others) out.push({ capsule: m.package.name, import: imp.id, version: imp.version });
    }
  }
  return out;
}
