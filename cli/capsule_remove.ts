/**
 * `astrid capsule remove NAME [--principal P] [--workspace] [--force] [--keep-env]`: removes an
 * install record — refused while installed capsules need what only it provides, unless
 * `--force` — deletes its binary from `bin/` when no other record references the hash, and its
 * stored `[env]` values (unless `--keep-env` or the other scope still has the capsule); then
 * asks a running daemon to reload.
 *
 * @module
 */
import {
  CapsuleCode,
  CapsuleError,
  dependentsOf,
  removeCapsuleEnv,
  uninstallCapsule,
} from "../kernel/capsule/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { openTarget, reloadDaemon, shortHash, visibleCapsules } from "./capsule_scope.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid capsule remove`. */
export const REMOVE_USAGE = `Usage: astrid capsule remove NAME [options]
  Remove a capsule; its binary goes too when no other install uses it

Options:
  --principal P   The principal's capsule (default: default)
  --workspace     This workspace's capsule instead
  --force         Remove even when installed capsules depend on it (they will not load)
  --keep-env      Keep its stored [env] values`;

const q = JSON.stringify;

/** Runs `astrid capsule remove …`. */
export async function runCapsuleRemove(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule", args, {
    principal: { type: "string" },
    workspace: { type: "boolean" },
    force: { type: "boolean" },
    "keep-env": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(REMOVE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("capsule", "capsule remove takes one NAME");
  const name = positionals[0];
  const target = await openTarget(values);
  const found = await visibleCapsules(target);
  const all = [...found.capsules, ...found.shadowed];
  const record = all.find((c) => c.name === name && c.scope === target.scope);
  const broken = found.problems.find((p) => p.scope === target.scope && p.dir.endsWith(`/${name}`));
  if (record === undefined && broken === undefined) {
    throw new CapsuleError(
      CapsuleCode.CAPSULE_NOT_INSTALLED,
      `Capsule ${q(name)} is not installed ${
        target.scope === "user" ? `for principal ${target.principal}` : `in ${target.workspace}`
      }: see astrid capsule list`,
      { data: { name } },
    );
  }
  const dependents = record ? dependentsOf(name, found.capsules.map((c) => c.manifest)) : [];
  if (dependents.length > 0) {
    const list = dependents.map((d) => `${d.capsule} needs ${d.import} ${d.version}`).join(", ");
    if (!values.force) {
      throw new CapsuleError(
        CapsuleCode.INSTALL_HAS_DEPENDENTS,
        `Cannot remove ${
          q(name)
        }: ${list} from it; remove the dependents first, or pass --force (they will not load)`,
        { data: { name, capsules: [...new Set(dependents.map((d) => d.capsule))] } },
      );
    }
    io.err(
      `warning: Removing ${name} anyway: ${list}; they will not load until a provider is installed`,
    );
  }
  const result = await uninstallCapsule(target.home, { ...target, name });
  io.out(`Removed ${name}${result.meta ? ` ${result.meta.version}` : ""} (${result.dir})`);
  if (result.binaryRemoved) {
    io.out(`Deleted binary ${result.meta?.wasm_hash} (no other install uses it)`);
  } else if (result.binaryUsers.length > 0) {
    io.out(
      `Kept binary ${
        shortHash(result.meta?.wasm_hash)
      }: ${result.binaryUsers.length} other install${
        result.binaryUsers.length === 1 ? "" : "s"
      } use it`,
    );
  }
  const elsewhere = all.some((c) => c.name === name && c.scope !== target.scope);
  if (!values["keep-env"] && !elsewhere) {
    if (await removeCapsuleEnv(target.home, { principal: target.principal, capsule: name })) {
      io.out(`Deleted its stored [env] values`);
    }
  }
  await reloadDaemon(target.home, io);
  return 0;
}
