/**
 * `astrid diff`, `astrid commit`, `astrid discard`: the session overlay (DESIGN §6a) as the
 * human reviews it. What an agent writes lands in the overlay of its (principal, workspace,
 * session); these verbs show it, apply it to the workspace, or drop it, through the daemon
 * (protocol methods `diff`, `commit`, `discard`, `overlays`).
 *
 * Which session: `--session ID`, else the session of this workspace (and principal) whose
 * overlay changed last — the one a `chat` or `-p` just used — named on stderr when several hold
 * changes. `/diff`, `/commit`, `/discard` in chat act on the chat's own session and share the
 * formatting here.
 *
 * @module
 */
import { type DaemonClient, type JsonValue, locateHome } from "../kernel/daemon/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { ensureDaemon } from "./ensure_daemon.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";
import { findWorkspaceRoot } from "./tui/workspace_root.ts";

/** One change of the overlay, as the `diff` method returns it. */
export interface OverlayChange {
  /** Root-relative path. */
  readonly path: string;
  /** `added`, `modified` or `deleted`. */
  readonly change: string;
  /** `file`, `dir`, `symlink`. */
  readonly kind: string;
  /** Size of the overlay's file. */
  readonly size?: number;
  /** Size of the workspace's file. */
  readonly previousSize?: number;
  /** A unified diff of a small text file. */
  readonly text?: string;
}

/** The `diff` method's result. */
export interface DiffResult {
  /** The workspace. */
  readonly workspace: { readonly root: string; readonly id: string };
  /** The changes. */
  readonly changes: readonly OverlayChange[];
}

/** The `commit` method's result. */
export interface CommitResult {
  /** The workspace. */
  readonly workspace: { readonly root: string; readonly id: string };
  /** Paths applied. */
  readonly applied: readonly string[];
  /** Changes left in the overlay because the workspace changed under them. */
  readonly conflicts: readonly { path: string; reason: string; message: string }[];
}

const USAGE = `Usage:
  astrid diff [PATH…] [--session ID] [--principal P] [--stat] [--json]
      Show the changes the agent made in the session overlay (not yet in the workspace)
  astrid commit [PATH…] [--session ID] [--principal P] [--force] [--json]
      Apply them (or those under PATH) to the workspace; --force overrides conflicts
  astrid discard [--session ID] [--principal P] [--yes] [--json]
      Drop them; asks first on a terminal, needs --yes otherwise

Without --session: the session of this workspace whose overlay changed last.`;

const COMMON = {
  session: { type: "string" },
  principal: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** `astrid diff`. */
export async function runDiff(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("diff", args, {
    ...COMMON,
    stat: { type: "boolean" },
  });
  if (values.help) return help(io);
  return await withSession("diff", values, io, async (client) => {
    const r = await client.call<DiffResult>("diff", {
      text: values.stat !== true,
      ...(positionals.length > 0 ? { paths: positionals } : {}),
    });
    if (values.json) io.out(JSON.stringify(r));
    else for (const line of formatDiff(r, { stat: values.stat === true })) io.out(line);
    return 0;
  });
}

/** `astrid commit`. */
export async function runCommit(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("commit", args, {
    ...COMMON,
    force: { type: "boolean" },
  });
  if (values.help) return help(io);
  return await withSession("commit", values, io, async (client) => {
    const r = await client.call<CommitResult>("commit", {
      ...(positionals.length > 0 ? { paths: positionals } : {}),
      ...(values.force ? { force: true } : {}),
    });
    if (values.json) io.out(JSON.stringify(r));
    else for (const line of formatCommit(r)) io.out(line);
    return r.conflicts.length === 0 ? 0 : 1;
  });
}

/** `astrid discard`. */
export async function runDiscard(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("discard", args, {
    ...COMMON,
    yes: { type: "boolean" },
  });
  if (values.help) return help(io);
  if (positionals.length > 0) {
    throw new UsageError("discard", "discard drops the whole overlay: it takes no paths");
  }
  return await withSession("discard", values, io, async (client) => {
    const d = await client.call<DiffResult>("diff", {});
    if (d.changes.length === 0) {
      io.out("No changes to discard");
      return 0;
    }
    if (values.yes !== true) {
      if (!Deno.stdin.isTerminal()) {
        throw new UsageError(
          "discard",
          `Discarding drops ${d.changes.length} change(s): pass --yes to confirm without a terminal`,
        );
      }
      const answer = prompt(`Discard ${d.changes.length} change(s)? [y/N]`);
      if (answer?.trim().toLowerCase() !== "y") {
        io.out("Kept");
        return 0;
      }
    }
    const r = await client.call<{ discarded: number }>("discard", {});
    if (values.json) io.out(JSON.stringify(r));
    else io.out(`Discarded ${r.discarded} change(s)`);
    return 0;
  });
}

/** Lines of `astrid diff` (and `/diff`): a header per change, then its unified diff. */
export function formatDiff(r: DiffResult, options: { stat?: boolean } = {}): string[] {
  if (r.changes.length === 0) return [`No changes (workspace ${r.workspace.root})`];
  const out = [`${r.changes.length} change(s) not yet in ${r.workspace.root}:`];
  for (const c of r.changes) {
    const size = c.size !== undefined ? ` (${c.size} bytes)` : "";
    out.push(`${c.change.padEnd(8)}  ${c.path}${c.kind === "file" ? size : ` [${c.kind}]`}`);
    if (options.stat !== true && c.text !== undefined) out.push(c.text.trimEnd());
  }
  return out;
}

/** Lines of `astrid commit` (and `/commit`). */
export function formatCommit(r: CommitResult): string[] {
  const out: string[] = [];
  if (r.applied.length === 0 && r.conflicts.length === 0) return ["Nothing to commit"];
  if (r.applied.length > 0) {
    out.push(`Committed ${r.applied.length} change(s) to ${r.workspace.root}:`);
    for (const p of r.applied) out.push(`  ${p}`);
  }
  if (r.conflicts.length > 0) {
    out.push(
      `${r.conflicts.length} change(s) left in the overlay: the workspace changed under them (commit --force to override):`,
    );
    for (const c of r.conflicts) out.push(`  ${c.path}: ${c.message}`);
  }
  return out;
}

function help(io: CliIo): number {
  io.out(USAGE);
  return 0;
}

/** Connects to the chosen session of this workspace and runs `fn`. */
async function withSession(
  verb: string,
  values: { session?: string; principal?: string; json?: boolean },
  io: CliIo,
  fn: (client: DaemonClient) => Promise<number>,
): Promise<number> {
  const workspace = await findWorkspaceRoot(Deno.cwd(), await locateHome().catch(() => undefined));
  const base = {
    client: `cli-${verb}`,
    workspace,
    ...(values.principal === undefined ? {} : { principal: values.principal }),
  };
  let session = values.session;
  if (session === undefined) {
    const { client } = await ensureDaemon(base);
    let found: { session: string; changes: number }[];
    try {
      const r = await client.call<{ sessions: { session: string; changes: number }[] }>(
        "overlays",
      );
      found = r.sessions;
    } finally {
      await client.close();
    }
    if (found.length === 0) {
      if (values.json) io.out(JSON.stringify({ workspace, sessions: [] as JsonValue[] }));
      else io.out(`No session of ${workspace} has uncommitted changes`);
      return 0;
    }
    session = found[0].session;
    if (found.length > 1 && !values.json) {
      io.err(
        `Session ${session} (changed last; ${found.length} sessions hold changes: ${
          found.map((f) => f.session).join(", ")
        }; choose with --session)`,
      );
    }
  }
  const { client } = await ensureDaemon({ ...base, session });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
