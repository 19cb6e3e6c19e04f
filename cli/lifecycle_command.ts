/**
 * `astrid start`, `astrid status [--json]`, `astrid stop`: the daemon's lifecycle as a user sees
 * it. `status` starts an ephemeral daemon when none runs (as every verb that needs the kernel
 * does); `start` starts a persistent one (or keeps an ephemeral one up); `stop` shuts it down
 * gracefully and waits until its files are gone.
 *
 * Flags are parsed by hand and only the daemon folder's light surface is imported, so these
 * verbs start about as fast as `deno run` itself.
 *
 * @module
 */
import {
  type DaemonStatusWire,
  locateHome,
  type RunPaths,
  runPaths,
} from "../kernel/daemon/mod.ts";
import { connectRunning, ensureDaemon, spawnDaemon, waitForDaemon } from "./ensure_daemon.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

const STOP_TIMEOUT_MS = 10_000;

/** Runs `astrid status [--json]`. */
export async function runStatus(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags("status", args, ["--json"]);
  if (flags.help) {
    io.out(
      "Usage: astrid status [--json]\n  Show the daemon's PID, uptime, version, clients and capsules (starting it if needed)",
    );
    return 0;
  }
  const { client } = await ensureDaemon({ client: "cli" });
  try {
    const status = await client.call<DaemonStatusWire>("status");
    if (flags.set.has("--json")) io.out(JSON.stringify(status));
    else for (const line of formatStatus(status)) io.out(line);
    return 0;
  } finally {
    await client.close();
  }
}

/** Runs `astrid start`. */
export async function runStart(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags("start", args, []);
  if (flags.help) {
    io.out("Usage: astrid start\n  Start a persistent daemon in the background (idempotent)");
    return 0;
  }
  const paths = runPaths(await locateHome());
  const running = await connectRunning(paths, { client: "cli" });
  if (running !== null) {
    try {
      const status = await running.call<DaemonStatusWire>("status");
      if (status.ephemeral) {
        await running.call("persist");
        io.out(
          `Astrid daemon already running (PID ${status.pid}); it now stays up after its last client leaves`,
        );
      } else {
        io.out(`Astrid daemon already running (PID ${status.pid})`);
      }
      return 0;
    } finally {
      await running.close();
    }
  }
  const client = await waitForDaemon(paths, () => spawnDaemon(paths, { persistent: true }), {
    client: "cli",
  });
  try {
    const status = await client.call<DaemonStatusWire>("status");
    if (status.ephemeral) await client.call("persist"); // raced with an auto-started one
    io.out(`Started Astrid daemon (PID ${status.pid}) for ${status.home}`);
    return 0;
  } finally {
    await client.close();
  }
}

/** Runs `astrid stop`. */
export async function runStop(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags("stop", args, []);
  if (flags.help) {
    io.out("Usage: astrid stop\n  Stop the daemon gracefully and wait until it is gone");
    return 0;
  }
  const paths = runPaths(await locateHome());
  const client = await connectRunning(paths, { client: "cli" });
  if (client === null) {
    io.out(`No Astrid daemon is running for ${paths.home}`);
    return 0;
  }
  const pid = client.welcome.pid;
  try {
    await client.call("shutdown", { reason: "astrid stop" });
  } finally {
    await client.closed; // the daemon says bye and closes
  }
  if (!(await waitGone(paths, STOP_TIMEOUT_MS))) {
    io.err(
      `error: The daemon (PID ${pid}) did not stop within ${
        STOP_TIMEOUT_MS / 1000
      } s: see ${paths.log}, or end it with kill ${pid}`,
    );
    return 1;
  }
  io.out(`Stopped Astrid daemon (PID ${pid})`);
  return 0;
}

/** Lines of the human status report. */
export function formatStatus(s: DaemonStatusWire): string[] {
  const byPrincipal = s.connections.by_principal.map((c) => `${c.principal}: ${c.count}`).join(
    ", ",
  );
  const capsules = s.capsules.length === 0 ? "none loaded" : s.capsules.map((c) => {
    const o = c as { name?: string; version?: string };
    return `${o.name}@${o.version}`;
  }).join(", ");
  const mode = s.ephemeral
    ? "ephemeral (exits when its last client leaves)"
    : s.idle_timeout_secs > 0
    ? `persistent (stops after ${s.idle_timeout_secs} s without clients)`
    : "persistent";
  return [
    `Astrid daemon ${s.version} running (PID ${s.pid})`,
    `  home:      ${s.home}`,
    `  uptime:    ${formatDuration(s.uptime_ms)}`,
    `  mode:      ${mode}`,
    `  clients:   ${s.connections.total}${byPrincipal === "" ? "" : ` (${byPrincipal})`}`,
    `  capsules:  ${capsules}`,
    `  socket:    ${s.socket}`,
  ];
}

/** `3s`, `4m 05s`, `2h 03m`, `1d 04h`. */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${String(h % 24).padStart(2, "0")}h`;
}

async function waitGone(paths: RunPaths, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const there = await Promise.all(
      [paths.socket, paths.lock].map((p) => Deno.lstat(p).then(() => true, () => false)),
    );
    if (!there[0] && !there[1]) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function parseFlags(
  verb: string,
  args: string[],
  known: string[],
): { set: Set<string>; help: boolean } {
  const set = new Set<string>();
  let help = false;
  for (const a of args) {
    if (a === "-h" || a === "--help") help = true;
    else if (known.includes(a)) set.add(a);
    else if (a.startsWith("-")) {
      throw new UsageError(
        verb,
        `Unknown option "${a}"${known.length > 0 ? `: use ${known.join(", ")}` : ""}`,
      );
    } else throw new UsageError(verb, `Unexpected argument "${a}"`);
  }
  return { set, help };
}
