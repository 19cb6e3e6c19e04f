/**
 * `astrid capsule update [NAME] [--principal P] [--workspace] [--yes] [--env K=V]…`: reinstalls
 * each capsule (or NAME) from the source its install record names, when what is there now
 * differs from what is installed; reports each as updated, up to date, skipped or failed.
 * Stored `[env]` values are kept (a new required field is asked, or taken from `--env`).
 *
 * @module
 */
import {
  CapsuleCode,
  CapsuleError,
  installCapsule,
  isRemoteSource,
} from "../kernel/capsule/mod.ts";
import { systemClock } from "../kernel/mod.ts";
import { parseVerbArgs } from "./args.ts";
import {
  collectEnv,
  loadCapsuleSource,
  removeReplaced,
  settleConflicts,
} from "./capsule_install.ts";
import { isInteractive, TerminalPrompter } from "./capsule_prompt.ts";
import {
  openTarget,
  parseEnvFlags,
  reloadDaemon,
  shortHash,
  visibleCapsules,
} from "./capsule_scope.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid capsule update`. */
export const UPDATE_USAGE = `Usage: astrid capsule update [NAME] [options]
  Reinstall NAME (or every capsule) from its recorded source when that changed

Options:
  --principal P     The principal's capsules (default: default)
  --workspace       This workspace's capsules instead
  --env KEY=VALUE   Set an [env] value of NAME (repeatable)
  -y, --yes         Replace capsules whose exports conflict without asking`;

const q = JSON.stringify;

/** Runs `astrid capsule update …`. */
export async function runCapsuleUpdate(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule", args, {
    principal: { type: "string" },
    workspace: { type: "boolean" },
    yes: { type: "boolean", short: "y" },
    env: { type: "string", multiple: true },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(UPDATE_USAGE);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError("capsule", "capsule update takes at most one NAME");
  }
  const only = positionals[0];
  if (only === undefined && (values.env ?? []).length > 0) {
    throw new UsageError(
      "capsule",
      "--env needs a NAME: astrid capsule update NAME --env KEY=VALUE",
    );
  }
  const target = await openTarget(values);
  const found = await visibleCapsules(target);
  const records = [...found.capsules, ...found.shadowed]
    .filter((c) => c.scope === target.scope && (only === undefined || c.name === only))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  if (only !== undefined && records.length === 0) {
    throw new CapsuleError(
      CapsuleCode.CAPSULE_NOT_INSTALLED,
      `Capsule ${q(only)} is not installed ${
        target.scope === "user" ? `for principal ${target.principal}` : `in ${target.workspace}`
      }: see astrid capsule list`,
      { data: { name: only } },
    );
  }
  if (records.length === 0) {
    io.out("No capsules installed: nothing to update");
    return 0;
  }
  const prompter = isInteractive() ? new TerminalPrompter() : undefined;
  let failed = 0;
  let changed = 0;
  for (const rec of records) {
    const label = `${rec.name} ${rec.meta.version}`;
    const source = rec.meta.source;
    if (isRemoteSource(source)) {
      io.out(`${label}: skipped (remote source ${q(source)} is not supported offline)`);
      continue;
    }
    try {
      const loaded = await loadCapsuleSource(source, io);
      const m = loaded.archive.manifest;
      if (m.package.name !== rec.name) {
        throw new CapsuleError(
          CapsuleCode.INSTALL_SOURCE_INVALID,
          `its source ${q(source)} now holds capsule ${q(m.package.name)}`,
          { data: { name: rec.name, path: source } },
        );
      }
      const flags = parseEnvFlags(values.env ?? [], m);
      const replaced = await settleConflicts(m, target, {
        yes: values.yes === true,
        io,
        ...(prompter ? { prompter } : {}),
      });
      const env = await collectEnv(m, target, { flags, ...(prompter ? { prompter } : {}) });
      await removeReplaced(replaced, { by: m.package.name, target, io });
      const result = await installCapsule(loaded.archive, {
        home: target.home,
        principal: target.principal,
        scope: target.scope,
        workspace: target.workspace,
        source: loaded.source,
        clock: systemClock,
        env,
      });
      if (result.status === "unchanged") {
        io.out(`${label}: up to date`);
      } else {
        changed++;
        const v = result.record.meta.version;
        io.out(
          `${rec.name} ${rec.meta.version} → ${v}: updated (${shortHash(rec.meta.wasm_hash)} → ${
            shortHash(result.record.meta.wasm_hash)
          })`,
        );
        if (result.collected) {
          io.out(`  deleted the old binary ${shortHash(result.collected)} (no install uses it)`);
        }
      }
    } catch (err) {
      if (err instanceof UsageError) throw err;
      failed++;
      io.err(`${label}: FAILED: ${(err as Error).message}`);
    }
  }
  if (changed > 0) await reloadDaemon(target.home, io);
  return failed === 0 ? 0 : 1;
}
