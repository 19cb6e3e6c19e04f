/**
 * `SandboxLauncher`: runs MCP servers in the namespace sandbox of `kernel/sandbox/`
 * (`spawnBackground` with piped stdio) over the session overlay, mounted at the workspace root,
 * so `${workspace}` is the overlay view and what a server writes lands in the session's diff
 * (folded when the server exits), never in the workspace until commit.
 *
 * - The server sees the system directories read-only, its own files (`visibleRoots`: its
 *   script's package, its program, its capsule), a private `/tmp` (also its `HOME` and
 *   `TMPDIR`), and the workspace view — only the paths its grants name when they are narrower
 *   than the workspace (`workspacePaths`: the rest is not there); the sandbox's defaults (the
 *   daemon's policy masks, `$ASTRID_HOME` hidden) apply. The network is loopback only unless the server may use it.
 * - A probe (no session) gets a throwaway overlay over its empty workspace, removed when it
 *   exits.
 * - stderr goes to the sandbox's log ring; its lines are forwarded to `onStderr` every
 *   {@link STDERR_DRAIN_MS} and when the server exits.
 * - While a server runs it holds its session's lock ({@link SandboxLauncher.holdsSession}):
 *   the engine stops it as soon as it is idle and something else waits for the session.
 *
 * @module
 */
import { join } from "node:path";
import type { SandboxProcess, SpawnBackgroundOptions } from "../sandbox/mod.ts";
import type { SandboxCommand } from "../sandbox/mod.ts";
import { OverlayVfs } from "../vfs/mod.ts";
import type { McpLaunch, McpLauncher } from "./launcher.ts";
import type { StdioProcess } from "./process_transport.ts";

/** What the launcher needs of the sandbox (`NativeSandbox` fits). */
export interface BackgroundSandbox {
  /** Starts `command` in the background over `options.overlay`. */
  spawnBackground(
    command: SandboxCommand,
    options: SpawnBackgroundOptions,
  ): Promise<SandboxProcess>;
}

/** How often stderr is forwarded while a server runs, ms. */
export const STDERR_DRAIN_MS = 500;

/** Runs servers in the namespace sandbox; see the module doc. */
export class SandboxLauncher implements McpLauncher {
  /** Always sandboxed. */
  readonly sandboxed = true;
  /** A server holds its session while it runs. */
  readonly holdsSession = true;
  readonly #sandbox: BackgroundSandbox;
  readonly #scratch: string;

  /** Uses `sandbox`; probes keep their throwaway overlays under `scratchDir`. */
  constructor(sandbox: BackgroundSandbox, options: { scratchDir: string }) {
    this.#sandbox = sandbox;
    this.#scratch = options.scratchDir;
  }

  /** Starts `launch` in the sandbox with piped stdio. */
  async spawn(launch: McpLaunch): Promise<StdioProcess> {
    let overlay = launch.overlay;
    let throwaway: OverlayVfs | undefined;
    if (overlay === undefined) {
      await Deno.mkdir(this.#scratch, { recursive: true, mode: 0o700 });
      const dir = await Deno.makeTempDir({ dir: this.#scratch, prefix: "probe-overlay-" });
      throwaway = await OverlayVfs.open(launch.cwd, join(dir, "session"));
      overlay = throwaway;
    }
    const drop = async () => {
      if (throwaway === undefined) return;
      try {
        await throwaway.destroy();
        await Deno.remove(join(throwaway.sessionDir, ".."), { recursive: true });
      } catch {
        // Already gone.
      }
    };
    let proc: SandboxProcess;
    try {
      proc = await this.#sandbox.spawnBackground({
        argv: launch.argv,
        cwd: launch.cwd,
        env: { ...launch.env, HOME: "/tmp", TMPDIR: "/tmp" },
      }, {
        overlay,
        stdio: "pipe",
        network: launch.network === true,
        ...(launch.readOnly === undefined ? {} : { readOnlyPaths: launch.readOnly }),
        ...(launch.workspacePaths === undefined || launch.overlay === undefined
          ? {}
          : { workspacePaths: launch.workspacePaths }),
      });
    } catch (err) {
      await drop();
      throw err;
    }
    let since = 0;
    let rest = "";
    const drain = () => {
      const page = proc.readLogs(since);
      since = page.next;
      if (launch.onStderr === undefined) return;
      for (const chunk of page.chunks) {
        rest += new TextDecoder().decode(chunk.data);
        const lines = rest.split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) if (line !== "") launch.onStderr(line.slice(0, 4096));
      }
    };
    const timer = setInterval(drain, STDERR_DRAIN_MS);
    const exited = proc.exited.then(async (exit) => {
      clearInterval(timer);
      drain();
      if (rest !== "") launch.onStderr?.(rest.slice(0, 4096));
      await drop();
      return { code: exit.signal === null ? exit.code : null, signal: exit.signal };
    });
    return {
      pid: proc.pid,
      stdin: proc.stdin!,
      stdout: proc.stdout!,
      exited,
      kill: (signal) => proc.kill(signal),
    };
  }
}
