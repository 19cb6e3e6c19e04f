/**
 * `astrid capsule install PATH|ARCHIVE [--principal P] [--workspace] [--yes] [--env K=V]…`:
 * installs a `.capsule` (or the `dist/<name>.capsule` of a capsule directory) for a principal
 * or the workspace — export conflicts asked about (or refused without `--yes` when no one can
 * be asked), `[env]` values asked (secrets hidden) or taken from `--env`, the module stored by
 * content address — then asks a running daemon to reload.
 *
 * The helpers {@link loadCapsuleSource}, {@link settleConflicts} and {@link collectEnv} are
 * shared with `capsule update` and `init`.
 *
 * @module
 */
import {
  type CapsuleArchive,
  CapsuleCode,
  CapsuleError,
  type CapsuleManifest,
  type DiscoveredCapsule,
  envServesEveryone,
  type EnvValues,
  exportConflicts,
  installCapsule,
  type InstallResult,
  missingEnv,
  parseEnvText,
  pickDeclared,
  readArchive,
  readCapsuleEnv,
  removeCapsuleEnv,
  resolveCapsuleSource,
  uninstallCapsule,
} from "../kernel/capsule/mod.ts";
import { systemClock } from "../kernel/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { isInteractive, type Prompter, TerminalPrompter } from "./capsule_prompt.ts";
import {
  type CapsuleTarget,
  openTarget,
  parseEnvFlags,
  reloadDaemon,
  shortHash,
  visibleCapsules,
} from "./capsule_scope.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid capsule install`. */
export const INSTALL_USAGE = `Usage: astrid capsule install PATH|ARCHIVE [options]
  Install a .capsule archive, or the dist/<name>.capsule of a capsule directory

Options:
  --principal P     Install for principal P (default: default)
  --workspace       Install into this workspace (.astrid/capsules/) instead of for the principal
  --env KEY=VALUE   Set an [env] value (repeatable; arrays: a,b or ["a","b"])
  -y, --yes         Replace capsules whose exports conflict without asking`;

const q = JSON.stringify;

/** A source read for installing: the archive and what to record as its source. */
export interface LoadedSource {
  /** The verified archive. */
  readonly archive: CapsuleArchive;
  /** What `meta.json` records: the directory or archive path, absolute. */
  readonly source: string;
}

/**
 * Reads the archive at `path` (a `.capsule`, or a directory with `dist/*.capsule`). A source
 * directory without an archive is built first with the SDK (`astrid build`'s
 * `buildCapsule`). A stale archive (older than `Capsule.toml`) is warned about.
 */
export async function loadCapsuleSource(path: string, io: CliIo): Promise<LoadedSource> {
  const found = await resolveCapsuleSource(path);
  let archivePath: string;
  let source: string;
  if (found.kind === "source") {
    archivePath = await buildInPlace(found.dir, io);
    source = found.dir;
  } else {
    if (found.stale) {
      io.err(
        `warning: ${found.path} is older than its Capsule.toml: run astrid build to refresh it`,
      );
    }
    archivePath = found.path;
    source = found.dir ?? found.path;
  }
  const archive = await readArchive(await Deno.readFile(archivePath));
  return { archive, source };
}

/** Builds the capsule source directory `dir` with the SDK; returns the archive's path. */
export async function buildInPlace(dir: string, io: CliIo): Promise<string> {
  io.err(`Building ${dir} (astrid build) …`);
  const { buildCapsule } = await import("../sdk/build/mod.ts");
  const result = await buildCapsule(dir);
  for (const w of result.warnings) io.err(`warning: ${w.message}`);
  return result.archivePath;
}

/**
 * Decides the export conflicts of `manifest` with the records in the target scope: with `yes`
 * or a "yes" from the operator it returns the capsules to replace (remove them with
 * {@link removeReplaced} right before installing); otherwise `INSTALL_EXPORT_CONFLICT`.
 * Conflicts with the other scope are only warned about.
 */
export async function settleConflicts(
  manifest: CapsuleManifest,
  target: CapsuleTarget,
  options: { yes: boolean; io: CliIo; prompter?: Prompter },
): Promise<string[]> {
  const visible = await visibleCapsules(target);
  const all: DiscoveredCapsule[] = [...visible.capsules, ...visible.shadowed];
  const same = all.filter((c) => c.scope === target.scope);
  const other = all.filter((c) => c.scope !== target.scope);
  for (const c of exportConflicts(manifest, other.map((o) => o.manifest))) {
    options.io.err(
      `warning: ${c.capsule} (${
        target.scope === "user" ? "workspace" : "user"
      } scope) also exports ${c.id} ${c.version}`,
    );
  }
  const conflicts = exportConflicts(manifest, same.map((o) => o.manifest));
  if (conflicts.length === 0) return [];
  const name = manifest.package.name;
  const byCapsule = new Map<string, string[]>();
  for (const c of conflicts) byCapsule.set(c.capsule, [...(byCapsule.get(c.capsule) ?? []), c.id]);
  const list = [...byCapsule].map(([cap, ids]) => `${cap} (${ids.join(", ")})`).join(", ");
  let replace = options.yes;
  if (!replace && options.prompter) {
    options.io.err(`Capsule ${q(name)} exports what installed capsules already export: ${list}`);
    replace = await options.prompter.confirm(
      `Replace ${[...byCapsule.keys()].join(", ")} with ${name}?`,
      false,
    );
  }
  if (!replace) {
    throw new CapsuleError(
      CapsuleCode.INSTALL_EXPORT_CONFLICT,
      `Capsule ${q(name)} exports what installed capsules already export: ${list}; ` +
        (options.prompter
          ? "nothing was changed"
          : "run again with --yes to replace them, or remove them first (astrid capsule remove NAME)"),
      { data: { name, capsules: [...byCapsule.keys()] } },
    );
  }
  return [...byCapsule.keys()];
}

/** Removes the capsules {@link settleConflicts} chose to replace (and their `[env]` values), saying so. */
export async function removeReplaced(
  names: readonly string[],
  options: { by: string; target: CapsuleTarget; io: CliIo },
): Promise<void> {
  const { by, target, io } = options;
  const visible = await visibleCapsules(target);
  for (const cap of names) {
    const r = await uninstallCapsule(target.home, { ...target, name: cap });
    const elsewhere = [...visible.capsules, ...visible.shadowed].some((c) =>
      c.name === cap && c.scope !== target.scope
    );
    if (!elsewhere) {
      await removeCapsuleEnv(target.home, { principal: target.principal, capsule: cap });
    }
    io.out(
      `Removed ${cap}${r.meta ? ` ${r.meta.version}` : ""} (replaced by ${by})` +
        (r.binaryRemoved ? `; deleted its binary ${shortHash(r.meta?.wasm_hash)}` : ""),
    );
  }
}

/**
 * The `[env]` values to install with: the stored ones this version declares, then `flags`,
 * then (interactive) an answer for each field neither gives (secrets hidden; Enter keeps the
 * default). Without a prompter a required field with no value is `INSTALL_ENV_INVALID` naming
 * the flag to pass.
 */
export async function collectEnv(
  manifest: CapsuleManifest,
  target: CapsuleTarget,
  options: { flags: EnvValues; prompter?: Prompter },
): Promise<EnvValues> {
  const stored = pickDeclared(
    manifest,
    await readCapsuleEnv(target.home, {
      principal: target.principal,
      capsule: manifest.package.name,
    }),
  );
  const values: Record<string, string | readonly string[]> = { ...stored, ...options.flags };
  const prompter = options.prompter;
  if (prompter) {
    for (const f of manifest.env) {
      if (Object.hasOwn(values, f.name)) continue;
      const label = `${manifest.package.name}: ${f.name}${
        f.description ? ` (${f.description})` : ""
      }`;
      const dflt = Array.isArray(f.default) ? f.default.join(",") : f.default as string | undefined;
      let answer: string;
      if (f.type === "select") {
        answer = await prompter.select(label, f.options ?? [], dflt);
      } else {
        answer = await prompter.text(label + (f.type === "array" ? ", comma-separated" : ""), {
          ...(dflt !== undefined ? { default: dflt } : {}),
          secret: f.type === "secret",
          required: f.required && dflt === undefined,
        });
      }
      if (answer === "" && !f.required) continue;
      if (dflt !== undefined && answer === dflt) continue; // the default stays in the manifest
      values[f.name] = parseEnvText(f, answer);
    }
  }
  const missing = missingEnv(manifest, values);
  if (missing.length > 0) {
    const name = manifest.package.name;
    throw new CapsuleError(
      CapsuleCode.INSTALL_ENV_INVALID,
      `Capsule ${q(name)} needs a value for required [env] field${missing.length > 1 ? "s" : ""} ${
        missing.map((f) => `${f.name}${f.description ? ` (${f.description})` : ""}`).join(", ")
      }: pass ${missing.map((f) => `--env ${f.name}=VALUE`).join(" ")}${
        prompter ? "" : " (no terminal to ask on)"
      }`,
      { data: { name, reason: `missing ${missing.map((f) => f.name).join(", ")}` } },
    );
  }
  return values;
}

/** One line saying what an install did. */
export function describeInstall(result: InstallResult, target: CapsuleTarget): string {
  const m = result.record.meta;
  const where = target.scope === "user"
    ? `for principal ${target.principal}`
    : `in workspace ${target.workspace}`;
  const hash = m.wasm_hash ? ` (${shortHash(m.wasm_hash)})` : "";
  if (result.status === "unchanged") {
    return `${m.name} ${m.version}${hash} is already installed ${where}`;
  }
  if (result.status === "updated") {
    return `Updated ${m.name} ${result.previous?.version ?? "?"} → ${m.version}${hash} ${where}`;
  }
  return `Installed ${m.name} ${m.version}${hash} ${where}`;
}

/** Runs `astrid capsule install …`. */
export async function runCapsuleInstall(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule", args, {
    principal: { type: "string" },
    workspace: { type: "boolean" },
    yes: { type: "boolean", short: "y" },
    env: { type: "string", multiple: true },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(INSTALL_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError("capsule", "capsule install takes one PATH or ARCHIVE");
  }
  const target = await openTarget(values);
  const { archive, source } = await loadCapsuleSource(positionals[0], io);
  const manifest = archive.manifest;
  const prompter = isInteractive() ? new TerminalPrompter() : undefined;
  const flags = parseEnvFlags(values.env ?? [], manifest);
  const replaced = await settleConflicts(manifest, target, {
    yes: values.yes === true,
    io,
    ...(prompter ? { prompter } : {}),
  });
  const env = await collectEnv(manifest, target, { flags, ...(prompter ? { prompter } : {}) });
  await removeReplaced(replaced, { by: manifest.package.name, target, io });
  const result = await installCapsule(archive, {
    home: target.home,
    principal: target.principal,
    scope: target.scope,
    workspace: target.workspace,
    source,
    clock: systemClock,
    env,
  });
  io.out(describeInstall(result, target));
  if (result.collected) io.out(`Deleted the old binary ${result.collected} (no install uses it)`);
  const count = Object.keys(env).length;
  if (result.envPath !== undefined && count > 0) {
    io.out(
      `Stored ${count} [env] value${count === 1 ? "" : "s"} in ${result.envPath} (mode 0600)` +
        (envServesEveryone(target)
          ? "; they serve every principal that has no values of its own"
          : `; they serve principal ${target.principal} only`),
    );
  }
  if (result.status !== "unchanged") await reloadDaemon(target.home, io);
  return 0;
}
