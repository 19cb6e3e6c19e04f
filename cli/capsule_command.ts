/**
 * `astrid capsule <subcommand>`: a table of subcommands, each loaded on demand like the
 * top-level verbs. Managing installs (`install`, `list`, `tree`, `update`, `remove`) lives in
 * `capsule_*.ts`, trusting workspace capsules (`trust`, `untrust`) in `capsule_trust.ts`; authoring (`new`, `test`) in `capsule_new_command.ts` and
 * `capsule_test_command.ts`, over the SDK (`sdk/build/`, `sdk/testing/`).
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";
import type { VerbRun } from "./run_cli.ts";

interface Subcommand {
  /** Arguments, as shown in the help. */
  args: string;
  /** One line on what it does. */
  summary: string;
  /** Loads the implementation. */
  load: () => Promise<VerbRun>;
}

/**
 * Imports `name` from the module `file` on demand, the specifier computed as `run_cli.ts`'s
 * `loadVerb` does (a string-literal dynamic import is pre-resolved with all it imports).
 */
async function loadSubcommand(file: string, name: string): Promise<VerbRun> {
  const mod = await import(new URL(file, import.meta.url).href) as Record<string, unknown>;
  return mod[name] as VerbRun;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  install: {
    args: "PATH|ARCHIVE [--principal P] [--workspace] [--env K=V] [--yes]",
    summary: "Install a .capsule, or a capsule directory's dist/<name>.capsule",
    load: async () => (await import("./capsule_install.ts")).runCapsuleInstall,
  },
  list: {
    args: "[--principal P] [--verbose] [--json]",
    summary:
      "List installed capsules (name, version, hash, scope, workspace trust; capabilities with --verbose)",
    load: async () => (await import("./capsule_list.ts")).runCapsuleList,
  },
  tree: {
    args: "[--principal P]",
    summary: "Show the imports/exports graph of installed capsules",
    load: async () => (await import("./capsule_list.ts")).runCapsuleTree,
  },
  update: {
    args: "[NAME] [--principal P] [--workspace] [--env K=V] [--yes]",
    summary: "Reinstall capsules whose recorded source changed",
    load: async () => (await import("./capsule_update.ts")).runCapsuleUpdate,
  },
  remove: {
    args: "NAME [--principal P] [--workspace] [--force] [--keep-env]",
    summary: "Remove a capsule (refused while others depend on it, unless --force)",
    load: async () => (await import("./capsule_remove.ts")).runCapsuleRemove,
  },
  trust: {
    args: "NAME [--yes]",
    summary: "Trust a workspace capsule as it is now so the daemon loads it (asks unless --yes)",
    load: () => loadSubcommand("./capsule_trust.ts", "runCapsuleTrust"),
  },
  untrust: {
    args: "NAME",
    summary: "Withdraw the trust in a workspace capsule; the daemon unloads it",
    load: () => loadSubcommand("./capsule_trust.ts", "runCapsuleUntrust"),
  },
  new: {
    args: "NAME [--template tool|interceptor|provider|run-loop] [--dir DIR] [--force]",
    summary: "Create a capsule from a template (builds as is, with a test)",
    load: async () => (await import("./capsule_new_command.ts")).runCapsuleNew,
  },
  test: {
    args: "[DIR] [--filter TEXT]",
    summary: "Build a capsule and run its tests/ against a real in-process kernel",
    load: async () => (await import("./capsule_test_command.ts")).runCapsuleTest,
  },
};

/** The help of `astrid capsule`. */
export function capsuleHelp(): string {
  const names = Object.keys(SUBCOMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  return [
    "Usage: astrid capsule <command> [options]",
    "",
    "Commands:",
    ...Object.entries(SUBCOMMANDS).flatMap(([name, s]) => [
      `  ${name.padEnd(width)}  ${s.summary}`,
      `  ${" ".repeat(width)}    astrid capsule ${name} ${s.args}`,
    ]),
    "",
    "Run astrid capsule <command> --help for details",
  ].join("\n");
}

/** Runs `astrid capsule …`. */
export async function runCapsule(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    io.out(capsuleHelp());
    return sub === undefined ? 2 : 0;
  }
  const entry = SUBCOMMANDS[sub];
  if (entry === undefined) {
    throw new UsageError(
      "capsule",
      `Unknown capsule command "${sub}": use ${Object.keys(SUBCOMMANDS).join(", ")}`,
    );
  }
  return await (await entry.load())(rest, io);
}
