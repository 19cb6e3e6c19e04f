/**
 * Installing a distro: choose its capsules ({@link planDistro}: the capsules in no group plus
 * those of the selected groups), fill its `{{ var }}` templates ({@link resolveVariables}),
 * then install each capsule for a principal with the capsule installer and pin the result in
 * `Distro.lock` ({@link installDistro}).
 *
 * A re-run is idempotent: a capsule whose installed record already holds the same bytes is
 * `unchanged`, and a lock that pins the same things is left byte-identical. The lock is
 * binding: a source whose module or manifest no longer hashes to what the lock pins is refused
 * unless `update` is set, and an installed capsule that differs from the lock (changed since by
 * `astrid capsule install`/`update`) is reported as a mismatch and reinstalled only when
 * `confirm` agrees. The lock is written only when every selected capsule is in place.
 *
 * Asking the operator is left to the caller through hooks: `confirm` (replace a capsule whose
 * exports conflict, reinstall a mismatched one), `resolveEnv` (required `[env]` values the
 * distro does not fill) and `build` (turn a source directory into an archive).
 *
 * @module
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import {
  type CapsuleManifest,
  discoverCapsules,
  type EnvValues,
  type ExportConflict,
  exportConflicts,
  installCapsule,
  isRemoteSource,
  missingEnv,
  parseEnvText,
  pickDeclared,
  readArchive,
  readCapsuleEnv,
  resolveCapsuleSource,
  uninstallCapsule,
  VersionRange,
} from "../capsule/mod.ts";
import type { Clock } from "../clock.ts";
import { blake3Hex } from "../crypto/mod.ts";
import type { AstridHome } from "../home/mod.ts";
import type { PrincipalId } from "../identity/mod.ts";
import { DistroCode, DistroError } from "./errors.ts";
import {
  DISTRO_NAME_RE,
  type DistroCapsule,
  type DistroManifest,
  type VariableDef,
} from "./distro_manifest.ts";
import {
  DISTRO_LOCK_VERSION,
  type DistroLock,
  distroLockPath,
  type LockedCapsule,
  readDistroLock,
  sameLock,
  writeDistroLock,
} from "./distro_lock.ts";
import { renderTemplate, templateVariables } from "./distro_template.ts";

const q = JSON.stringify;

/** What {@link planDistro} chose. */
export interface DistroPlan {
  /** The distro. */
  readonly distro: DistroManifest;
  /** The selected groups, in file order. */
  readonly groups: readonly string[];
  /** The capsules to install, in `[[capsule]]` order. */
  readonly capsules: readonly DistroCapsule[];
  /** The variables the selected capsules' templates use, in `[variables]` order. */
  readonly variables: readonly VariableDef[];
}

/**
 * Chooses the capsules of `distro`: every capsule in no group, plus the members of the
 * selected groups (`groups`, or the groups marked `default` when not given). Throws
 * `DISTRO_GROUP_UNKNOWN` for a group the distro does not define.
 */
export function planDistro(
  distro: DistroManifest,
  options: { groups?: readonly string[] } = {},
): DistroPlan {
  const known = distro.group.map((g) => g.name);
  for (const g of options.groups ?? []) {
    if (!known.includes(g)) {
      throw new DistroError(
        DistroCode.DISTRO_GROUP_UNKNOWN,
        `Distro ${q(distro.distro.name)} has no group ${q(g)}: ${
          known.length ? `choose from ${known.join(", ")}` : "it defines no groups"
        }`,
        { data: { name: g, known } },
      );
    }
  }
  const selected = options.groups !== undefined
    ? known.filter((g) => options.groups!.includes(g))
    : distro.group.filter((g) => g.default).map((g) => g.name);
  const members = new Set(
    distro.group.filter((g) => selected.includes(g.name)).flatMap((g) => g.capsules),
  );
  const grouped = new Set(distro.group.flatMap((g) => g.capsules));
  const capsules = distro.capsule.filter((c) => !grouped.has(c.name) || members.has(c.name));
  const used = new Set(
    capsules.flatMap((c) => Object.values(c.env).flatMap((v) => templateVariables(v))),
  );
  return {
    distro,
    groups: selected,
    capsules,
    variables: distro.variables.filter((v) => used.has(v.name)),
  };
}

/**
 * The values of the plan's variables: `given` (from `--var` or prompts) over defaults.
 * `missing` lists the required variables still without a value. Throws
 * `DISTRO_VARIABLE_INVALID` for a given name the distro does not define.
 */
export function resolveVariables(
  plan: DistroPlan,
  given: Readonly<Record<string, string>>,
): { values: Record<string, string>; missing: VariableDef[] } {
  const known = plan.distro.variables.map((v) => v.name);
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) {
      throw new DistroError(
        DistroCode.DISTRO_VARIABLE_INVALID,
        `Distro ${q(plan.distro.distro.name)} has no variable ${q(name)}: ${
          known.length ? `its variables are ${known.join(", ")}` : "it defines none"
        }`,
        { data: { name, known } },
      );
    }
  }
  const values: Record<string, string> = { groups: plan.groups.join(",") };
  const missing: VariableDef[] = [];
  for (const v of plan.distro.variables) {
    const value = Object.hasOwn(given, v.name) ? given[v.name] : v.default;
    if (value !== undefined && value !== "") values[v.name] = value;
    else if (v.required && plan.variables.includes(v)) missing.push(v);
  }
  return { values, missing };
}

/** A capsule's `[env]` values from the distro, templates filled; a value with an unset variable is left out. */
export function capsuleEnvPreset(
  entry: DistroCapsule,
  values: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry.env)) {
    const rendered = renderTemplate(v, values);
    if (rendered !== undefined) out[k] = rendered;
  }
  return out;
}

/**
 * The local path a capsule entry installs from: absolute as written, else against the
 * distro's `source_root` (relative to the `Distro.toml`). A remote source (`@org/name`) throws
 * `DISTRO_SOURCE_UNSUPPORTED`: it is recorded, not fetched offline.
 */
export function resolveDistroSource(distro: DistroManifest, entry: DistroCapsule): string {
  if (isRemoteSource(entry.source)) {
    throw new DistroError(
      DistroCode.DISTRO_SOURCE_UNSUPPORTED,
      `Capsule ${q(entry.name)} of distro ${q(distro.distro.name)} has the remote source ${
        q(entry.source)
      }: remote sources are recorded but not fetched offline; build the capsule and set source to its directory or .capsule file`,
      { data: { name: entry.name, source: entry.source } },
    );
  }
  if (isAbsolute(entry.source)) return resolve(entry.source);
  return resolve(dirname(resolve(distro.file)), distro.distro.source_root, entry.source);
}

/**
 * Finds a `Distro.toml`: a path (to the file or its directory; anything with a `/`, starting
 * with `.`, or ending in `.toml`) against `cwd`, or a name under `distrosDir`
 * (`<distrosDir>/<name>/Distro.toml`). Throws `DISTRO_NOT_FOUND` or, for `@org/name`,
 * `DISTRO_SOURCE_UNSUPPORTED`.
 */
export async function findDistro(
  spec: string,
  options: { distrosDir: string; cwd?: string },
): Promise<string> {
  if (isRemoteSource(spec)) {
    throw new DistroError(
      DistroCode.DISTRO_SOURCE_UNSUPPORTED,
      `Cannot fetch distro ${
        q(spec)
      }: remote distros are not supported offline; give a name under ${options.distrosDir} or a path to a Distro.toml`,
      { data: { source: spec } },
    );
  }
  const isPath = spec.includes("/") || spec.startsWith(".") || spec.endsWith(".toml");
  if (isPath) {
    let path = resolve(options.cwd ?? Deno.cwd(), spec);
    const info = await Deno.stat(path).catch(() => undefined);
    if (info?.isDirectory) path = join(path, "Distro.toml");
    if (!(await Deno.stat(path).then((i) => i.isFile, () => false))) {
      throw new DistroError(DistroCode.DISTRO_NOT_FOUND, `No distro manifest at ${q(path)}`, {
        data: { path },
      });
    }
    return path;
  }
  const path = join(options.distrosDir, spec, "Distro.toml");
  if (DISTRO_NAME_RE.test(spec) && await Deno.stat(path).then((i) => i.isFile, () => false)) {
    return path;
  }
  const known: string[] = [];
  const entries = await Array.fromAsync(Deno.readDir(options.distrosDir)).catch(() => []);
  for (const e of entries) {
    const file = join(options.distrosDir, e.name, "Distro.toml");
    if (e.isDirectory && await Deno.stat(file).then(() => true, () => false)) known.push(e.name);
  }
  throw new DistroError(
    DistroCode.DISTRO_NOT_FOUND,
    `No distro named ${q(spec)} in ${options.distrosDir}: ${
      known.length ? `known distros are ${known.sort().join(", ")}` : "there are none"
    }; or give a path to a Distro.toml`,
    { data: { name: spec, path, known } },
  );
}

/** A question {@link installDistro} asks through `confirm`. */
export type DistroQuestion =
  | {
    /** A capsule exports what installed capsules outside the distro export: replace them? */
    readonly kind: "export-conflict";
    /** The distro's capsule. */
    readonly capsule: string;
    /** What conflicts. */
    readonly conflicts: readonly ExportConflict[];
  }
  | {
    /** An installed capsule differs from the lock: reinstall the locked version? */
    readonly kind: "lock-mismatch";
    /** The capsule. */
    readonly capsule: string;
    /** The module hash the lock pins. */
    readonly locked: string | null;
    /** The module hash installed. */
    readonly installed: string | null;
  };

/** One capsule's progress, reported before (`start`) and after (`done`) its install. */
export interface DistroProgress {
  /** 1-based position. */
  readonly index: number;
  /** How many capsules the plan installs. */
  readonly total: number;
  /** The capsule. */
  readonly name: string;
  /** `start`, or `done` with an outcome. */
  readonly phase: "start" | "done";
  /** The outcome, when done. */
  readonly outcome?: DistroCapsuleOutcome;
}

/** What happened to one capsule. */
export interface DistroCapsuleOutcome {
  /** The capsule. */
  readonly name: string;
  /** The version installed (or found). */
  readonly version?: string;
  /** The version it replaced, for `updated`. */
  readonly previousVersion?: string;
  /** `installed`, `updated`, `unchanged`, `failed`, or `mismatch` (differs from the lock and was left as is). */
  readonly status: "installed" | "updated" | "unchanged" | "failed" | "mismatch";
  /** A one-line reason, for `failed` and `mismatch`. */
  readonly detail?: string;
  /** The error, for `failed`. */
  readonly error?: unknown;
}

/** An installed capsule that differs from what the lock pins. */
export interface LockMismatch {
  /** The capsule. */
  readonly name: string;
  /** The module hash the lock pins. */
  readonly locked: string | null;
  /** The module hash installed. */
  readonly installed: string | null;
  /** True when it was reinstalled at the locked version. */
  readonly repaired: boolean;
}

/** Options of {@link installDistro}. */
export interface InstallDistroOptions {
  /** The Astrid home. */
  readonly home: AstridHome;
  /** The principal whose capsules these become. */
  readonly principal: PrincipalId;
  /** Install times and `locked_at` come from here. */
  readonly clock: Clock;
  /** Variable values (from {@link resolveVariables}). */
  readonly variables: Readonly<Record<string, string>>;
  /** Accept sources that changed since the lock (and re-pin them). */
  readonly update?: boolean;
  /** The lock file; default `etc/Distro.lock`. */
  readonly lockPath?: string;
  /** Called before and after each capsule. */
  readonly onProgress?: (progress: DistroProgress) => void;
  /** Answers a question; absent or false means "no". */
  readonly confirm?: (question: DistroQuestion) => Promise<boolean>;
  /** Fills required `[env]` values the distro leaves missing; default: none (the install fails). */
  readonly resolveEnv?: (manifest: CapsuleManifest, values: EnvValues) => Promise<EnvValues>;
  /** Builds a capsule source directory, returning the archive's path; default: refuse. */
  readonly build?: (dir: string) => Promise<string>;
}

/** The result of {@link installDistro}. */
export interface DistroInstallReport {
  /** One outcome per planned capsule, in order. */
  readonly outcomes: readonly DistroCapsuleOutcome[];
  /** Installed capsules that differed from the lock. */
  readonly mismatches: readonly LockMismatch[];
  /** The lock as it now stands (absent when not every capsule is in place). */
  readonly lock?: DistroLock;
  /** True when the lock file was (re)written; false when unchanged or not written. */
  readonly lockWritten: boolean;
  /** The lock file. */
  readonly lockPath: string;
  /** Capsules the previous lock of this distro pinned that this plan does not install (left installed). */
  readonly leftover: readonly string[];
  /** True when every capsule is installed as planned and the lock is current. */
  readonly ok: boolean;
}

function hashText(text: string): string {
  return `blake3:${blake3Hex(text)}`;
}

/** Installs the plan's capsules for a principal and writes `Distro.lock`; see the module doc. */
export async function installDistro(
  plan: DistroPlan,
  options: InstallDistroOptions,
): Promise<DistroInstallReport> {
  const { home, principal, clock } = options;
  const lockPath = options.lockPath ?? distroLockPath(home);
  const old = await readDistroLock(lockPath);
  const sameDistro = old !== undefined && old.distro.name === plan.distro.distro.name &&
    old.distro.principal === principal;
  const discovery = await discoverCapsules(home, { principal });
  const installed = new Map(discovery.capsules.map((c) => [c.name, c]));
  const planned = new Set(plan.capsules.map((c) => c.name));
  const outcomes: DistroCapsuleOutcome[] = [];
  const mismatches: LockMismatch[] = [];
  const locked: LockedCapsule[] = [];
  const total = plan.capsules.length;

  for (const [i, entry] of plan.capsules.entries()) {
    const index = i + 1;
    options.onProgress?.({ index, total, name: entry.name, phase: "start" });
    let outcome: DistroCapsuleOutcome;
    try {
      outcome = await installOne(entry);
    } catch (error) {
      outcome = {
        name: entry.name,
        status: "failed",
        detail: error instanceof Error ? error.message : String(error),
        error,
      };
    }
    outcomes.push(outcome);
    options.onProgress?.({ index, total, name: entry.name, phase: "done", outcome });
  }

  const leftover = sameDistro ? old.capsule.map((c) => c.name).filter((n) => !planned.has(n)) : [];
  const complete = outcomes.every((o) => o.status !== "failed" && o.status !== "mismatch");
  if (!complete) {
    return { outcomes, mismatches, lockWritten: false, lockPath, leftover, ok: false };
  }
  const lock: DistroLock = {
    schema_version: DISTRO_LOCK_VERSION,
    distro: {
      name: plan.distro.distro.name,
      version: plan.distro.distro.version,
      source: resolve(plan.distro.file),
      principal,
      groups: plan.groups,
      locked_at: new Date(clock.now()).toISOString(),
    },
    capsule: locked,
  };
  if (old !== undefined && sameLock(old, lock)) {
    return { outcomes, mismatches, lock: old, lockWritten: false, lockPath, leftover, ok: true };
  }
  await writeDistroLock(lockPath, lock);
  return { outcomes, mismatches, lock, lockWritten: true, lockPath, leftover, ok: true };

  async function installOne(entry: DistroCapsule): Promise<DistroCapsuleOutcome> {
    const source = resolveDistroSource(plan.distro, entry);
    const found = await resolveCapsuleSource(source);
    let archivePath: string;
    if (found.kind === "archive") archivePath = found.path;
    else if (options.build) archivePath = await options.build(found.dir);
    else {
      throw new DistroError(
        DistroCode.DISTRO_CAPSULE_INVALID,
        `Capsule ${q(entry.name)} at ${q(found.dir)} is not built: run astrid build in it first`,
        { data: { name: entry.name, source, field: "source" } },
      );
    }
    const archive = await readArchive(await Deno.readFile(archivePath));
    const m = archive.manifest;
    if (m.package.name !== entry.name) {
      throw new DistroError(
        DistroCode.DISTRO_CAPSULE_INVALID,
        `Capsule ${q(entry.name)}: ${q(archivePath)} holds capsule ${
          q(m.package.name)
        }; fix name or source in ${plan.distro.file}`,
        { data: { name: entry.name, source, field: "name" } },
      );
    }
    if (!VersionRange.parse(entry.version).satisfiedBy(m.package.version)) {
      throw new DistroError(
        DistroCode.DISTRO_CAPSULE_INVALID,
        `Capsule ${q(entry.name)}: ${q(archivePath)} is version ${m.package.version}, outside ${
          q(entry.version)
        } that ${plan.distro.file} asks for`,
        { data: { name: entry.name, source, field: "version" } },
      );
    }
    const wasmHash = archive.wasmHash ?? null;
    const manifestHash = hashText(archive.manifestText);
    const pin = sameDistro ? old.capsule.find((c) => c.name === entry.name) : undefined;
    if (
      pin !== undefined && options.update !== true &&
      (pin.wasm_hash !== wasmHash || pin.manifest_hash !== manifestHash)
    ) {
      const what = pin.wasm_hash !== wasmHash
        ? `its module hashes to ${wasmHash ?? "nothing"} but the lock pins ${
          pin.wasm_hash ?? "none"
        }`
        : `its manifest hashes to ${manifestHash} but the lock pins ${pin.manifest_hash}`;
      throw new DistroError(
        DistroCode.DISTRO_LOCK_MISMATCH,
        `Capsule ${
          q(entry.name)
        } changed at its source since Distro.lock: ${what}; run astrid init --update to accept it`,
        {
          data: {
            name: entry.name,
            hash: pin.wasm_hash ?? undefined,
            actual: wasmHash ?? undefined,
          },
        },
      );
    }
    const existing = installed.get(entry.name);
    if (
      existing !== undefined && pin !== undefined &&
      (existing.meta.wasm_hash !== pin.wasm_hash ||
        hashText(existing.manifestText) !== pin.manifest_hash)
    ) {
      const question = {
        kind: "lock-mismatch" as const,
        capsule: entry.name,
        locked: pin.wasm_hash,
        installed: existing.meta.wasm_hash,
      };
      const repair = options.confirm ? await options.confirm(question) : false;
      mismatches.push({
        name: entry.name,
        locked: pin.wasm_hash,
        installed: existing.meta.wasm_hash,
        repaired: repair,
      });
      if (!repair) {
        return {
          name: entry.name,
          version: existing.meta.version,
          status: "mismatch",
          detail: `installed ${existing.meta.version} (${
            existing.meta.wasm_hash ?? "no module"
          }) differs from Distro.lock (${pin.wasm_hash ?? "no module"})`,
        };
      }
    }
    const outside = [...installed.values()].filter((c) => !planned.has(c.name)).map((c) =>
      c.manifest
    );
    const conflicts = exportConflicts(m, outside);
    if (conflicts.length > 0) {
      const replace = options.confirm
        ? await options.confirm({ kind: "export-conflict", capsule: entry.name, conflicts })
        : false;
      if (!replace) {
        throw new DistroError(
          DistroCode.DISTRO_CAPSULE_INVALID,
          `Capsule ${q(entry.name)} exports what installed capsules already export: ${
            conflicts.map((c) => `${c.id} (${c.capsule})`).join(", ")
          }; remove them first or confirm the replacement`,
          { data: { name: entry.name, field: "exports" } },
        );
      }
      for (const name of new Set(conflicts.map((c) => c.capsule))) {
        await uninstallCapsule(home, { principal, scope: "user", name });
        installed.delete(name);
      }
    }
    const preset = capsuleEnvPreset(entry, options.variables);
    const fields = new Map(m.env.map((f) => [f.name, f]));
    const fromDistro: Record<string, string | readonly string[]> = {};
    for (const [k, v] of Object.entries(preset)) {
      const field = fields.get(k);
      fromDistro[k] = field ? parseEnvText(field, v) : v;
    }
    let env: EnvValues = {
      ...pickDeclared(m, await readCapsuleEnv(home, { principal, capsule: entry.name })),
      ...fromDistro,
    };
    if (missingEnv(m, env).length > 0 && options.resolveEnv) {
      env = await options.resolveEnv(m, env);
    }
    const result = await installCapsule(archive, {
      home,
      principal,
      scope: "user",
      source,
      clock,
      env,
    });
    installed.set(entry.name, { ...result.record, name: entry.name, scope: "user" });
    locked.push({
      name: entry.name,
      version: m.package.version,
      source,
      wasm_hash: wasmHash,
      manifest_hash: manifestHash,
    });
    return {
      name: entry.name,
      version: m.package.version,
      status: result.status,
      ...(result.status === "updated" && result.previous
        ? { previousVersion: result.previous.version }
        : {}),
    };
  }
}
