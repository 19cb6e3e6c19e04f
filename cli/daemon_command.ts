/**
 * `astrid daemon [--ephemeral]` (internal, hidden from help): runs the kernel in the foreground
 * until SIGTERM, SIGINT, an idle or ephemeral timeout, or a `Shutdown` request. The CLI starts
 * it detached; an operator may run it by hand to watch its log on the terminal.
 *
 * Exit codes: 0 after a graceful shutdown, 1 when boot failed, 2 usage, 3 when another daemon
 * owns the home (the message names its PID). A second SIGINT or SIGTERM during shutdown exits
 * at once with 130.
 *
 * @module
 */
import { bootDaemon, DaemonCode } from "../kernel/daemon/mod.ts";
import { hasCode } from "../kernel/mod.ts";
import { ALREADY_RUNNING_EXIT } from "./ensure_daemon.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

const SIGNALS = ["SIGTERM", "SIGINT"] as const;

/** Runs `astrid daemon [--ephemeral]`. */
export async function runDaemon(args: string[], io: CliIo): Promise<number> {
  let ephemeral = false;
  for (const a of args) {
    if (a === "--ephemeral") ephemeral = true;
    else if (a === "-h" || a === "--help") {
      io.out(
        "Usage: astrid daemon [--ephemeral]\n  Run the kernel in the foreground (internal: the CLI starts it when needed)",
      );
      return 0;
    } else throw new UsageError("daemon", `Unknown option "${a}": use --ephemeral`);
  }

  // Signals that arrive during boot are remembered and honoured once boot is done.
  let signalled: string | undefined;
  let stop: ((reason: string) => void) | undefined;
  const handlers = SIGNALS.map((sig) => {
    const handler = () => {
      if (signalled !== undefined) {
        io.err(`Second ${sig} during shutdown: exiting at once`);
        Deno.exit(130);
      }
      signalled = `signal ${sig}`;
      stop?.(signalled);
    };
    Deno.addSignalListener(sig, handler);
    return { sig, handler };
  });
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault(); // a stray rejection in one connection must not take the kernel down
    io.err(`Unhandled rejection in the daemon: ${String(e.reason?.stack ?? e.reason)}`);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  try {
    let daemon;
    try {
      daemon = await bootDaemon({ ephemeral });
    } catch (err) {
      if (hasCode(err, DaemonCode.DAEMON_ALREADY_RUNNING)) {
        io.err(`error: ${(err as Error).message}`);
        return ALREADY_RUNNING_EXIT;
      }
      throw err;
    }
    stop = (reason) => void daemon.shutdown(reason);
    if (signalled !== undefined) stop(signalled);
    const info = await daemon.closed;
    return info.problems.length === 0 ? 0 : 1;
  } finally {
    for (const { sig, handler } of handlers) Deno.removeSignalListener(sig, handler);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
}
