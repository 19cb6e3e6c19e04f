/**
 * The CLI dispatcher: a table of verbs, each loaded on demand.
 *
 * @module
 */
import { AstridError, VERSION } from "../kernel/mod.ts";
import { type CliIo, processIo } from "./io.ts";
import { UsageError } from "./errors.ts";

/**
 * Imports `name` from the verb module `file` on demand. The specifier is computed on purpose:
 * Deno pre-resolves every string-literal dynamic import of a module, npm packages included, so
 * literal imports here would make `astrid --version` pay for the whole program.
 */
async function loadVerb(file: string, name: string): Promise<VerbRun> {
  const mod = await import(new URL(file, import.meta.url).href) as Record<string, unknown>;
  return mod[name] as VerbRun;
}

/** A verb's implementation: receives the arguments after the verb; resolves an exit code. */
export type VerbRun = (args: string[], io: CliIo) => Promise<number>;

interface Verb {
  summary: string;
  load: () => Promise<VerbRun>;
  /** Internal verbs run like any other but are left out of the help. */
  hidden?: boolean;
}

const VERBS: Record<string, Verb> = {
  audit: {
    summary: "Verify or show the signed audit chains (verify, show)",
    load: () => loadVerb("./audit_command.ts", "runAudit"),
  },
  build: {
    summary: "Compile a capsule directory into dist/<name>.capsule (--debug, --out, --json)",
    load: () => loadVerb("./build_command.ts", "runBuild"),
  },
  chat: {
    summary: "Talk with the agent in the terminal (--session ID, --principal P)",
    load: () => loadVerb("./chat_command.ts", "runChat"),
  },
  commit: {
    summary: "Apply the session overlay's changes to the workspace (--session ID, --force)",
    load: () => loadVerb("./diff_command.ts", "runCommit"),
  },
  diff: {
    summary: "Show what the agent changed in the session overlay (--session ID, --stat, --json)",
    load: () => loadVerb("./diff_command.ts", "runDiff"),
  },
  discard: {
    summary: "Drop the session overlay's changes (--session ID, --yes)",
    load: () => loadVerb("./diff_command.ts", "runDiscard"),
  },
  capsule: {
    summary:
      "Create, test and manage capsules (new, test, install, list, tree, update, remove, trust, untrust)",
    load: () => loadVerb("./capsule_command.ts", "runCapsule"),
  },
  init: {
    summary: "Install a distro's capsules and pin them in Distro.lock (--distro NAME|PATH)",
    load: () => loadVerb("./init_command.ts", "runInit"),
  },
  keypair: {
    summary:
      "Manage keys: the runtime key and operator keys (generate, list, show, pubkey, delete)",
    load: () => loadVerb("./keypair_command.ts", "runKeypair"),
  },
  mcp: {
    summary: "Serve the daemon's tools to MCP clients (serve), list or reload MCP servers",
    load: () => loadVerb("./mcp_command.ts", "runMcp"),
  },
  start: {
    summary: "Start a persistent daemon in the background",
    load: () => loadVerb("./lifecycle_command.ts", "runStart"),
  },
  status: {
    summary: "Show the daemon's PID, uptime, clients and capsules (--json)",
    load: () => loadVerb("./lifecycle_command.ts", "runStatus"),
  },
  stop: {
    summary: "Stop the daemon gracefully",
    load: () => loadVerb("./lifecycle_command.ts", "runStop"),
  },
  daemon: {
    summary: "Run the kernel in the foreground (internal; --ephemeral)",
    load: () => loadVerb("./daemon_command.ts", "runDaemon"),
    hidden: true,
  },
};

/** The top-level help text. */
export function helpText(): string {
  const shown = Object.entries(VERBS).filter(([, v]) => v.hidden !== true);
  const width = Math.max(...shown.map(([name]) => name.length));
  return [
    `astrid ${VERSION}: an operating system for AI agents`,
    "",
    "Usage: astrid <command> [options]",
    '       astrid -p "PROMPT" [--session ID] [--json] [--yes] …   (one headless turn)',
    "",
    "Commands:",
    ...shown.map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}`),
    "",
    "Options:",
    "  -h, --help     Show this help",
    "  -V, --version  Show the version",
    "",
    "Environment: ASTRID_HOME (default ~/.astrid)",
  ].join("\n");
}

/** Runs the CLI with `args`; resolves the process exit code (0 ok, 1 error, 2 usage). */
export async function runCli(args: string[], io: CliIo = processIo): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    io.out(helpText());
    return 0;
  }
  if (first === "-V" || first === "--version") {
    io.out(`astrid ${VERSION}`);
    return 0;
  }
  const verb = VERBS[first];
  if (verb === undefined && isPrintMode(args)) {
    try {
      const runPrint = await loadVerb("./print_command.ts", "runPrint");
      return await runPrint(args, io);
    } catch (err) {
      return reportError(err, io);
    }
  }
  if (verb === undefined) {
    io.err(`error: Unknown command "${first}": run astrid --help for the list`);
    return 2;
  }
  try {
    const run = await verb.load();
    return await run(rest, io);
  } catch (err) {
    return reportError(err, io);
  }
}

/** `astrid -p …` / `astrid --print …`: headless mode, whatever the flags' order. */
function isPrintMode(args: string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "-p" || a === "--print") return true;
  }
  return false;
}

function reportError(err: unknown, io: CliIo): number {
  if (err instanceof UsageError) {
    io.err(`error: ${err.message}`);
    io.err(`Run astrid ${err.data?.verb} --help for usage`);
    return 2;
  }
  if (err instanceof AstridError) {
    io.err(`error: ${err.message}`);
    if (Deno.env.get("ASTRID_DEBUG")) io.err(`  code: ${err.code}`);
    return 1;
  }
  io.err(`error: Internal error: ${(err as Error)?.message ?? String(err)}`);
  if (Deno.env.get("ASTRID_DEBUG")) io.err(String((err as Error)?.stack ?? ""));
  return 1;
}
