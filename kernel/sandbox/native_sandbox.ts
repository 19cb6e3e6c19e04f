/**
 * `NativeSandbox`: the sandbox as a kernel service — the defaults every command of this
 * daemon shares (the policy, `$ASTRID_HOME` hidden, extra read-only toolchain paths, limits,
 * timers) bound once, so the process host calls, the shell tool and the MCP engine pass only
 * the command, the session's overlay and what differs per call.
 *
 * @example
 * ```ts ignore
 * const sandbox = new NativeSandbox({ policy: config.security.policy, hidePaths: [home.root] });
 * if (!(await sandbox.status()).available) console.warn("commands will ask approval every time");
 * const result = await sandbox.run({ argv: ["make", "test"] }, { overlay, network: false });
 * ```
 *
 * @module
 */
import { runSandboxed, type RunSandboxedOptions, type SandboxResult } from "./run_sandboxed.ts";
import type { SandboxCommand, SandboxOptions } from "./sandbox_command.ts";
import { type SandboxStatus, sandboxStatus } from "./sandbox_status.ts";
import {
  type SandboxProcess,
  spawnBackground,
  type SpawnBackgroundOptions,
} from "./spawn_background.ts";

/** Defaults of a {@link NativeSandbox}: every option but the overlay and the call's own. */
export type NativeSandboxDefaults = Omit<
  SandboxOptions,
  "overlay" | "signal" | "network" | "allowUnsandboxed"
>;

/** The sandbox with this daemon's defaults bound. */
export class NativeSandbox {
  readonly #defaults: NativeSandboxDefaults;

  /** Binds `defaults` (per-call options override them; path lists are joined). */
  constructor(defaults: NativeSandboxDefaults = {}) {
    this.#defaults = defaults;
  }

  /** Whether the namespace sandbox works here (probed once per process). */
  status(): Promise<SandboxStatus> {
    return sandboxStatus();
  }

  /** Runs `command` to completion over the session overlay (see {@link runSandboxed}). */
  run(command: SandboxCommand, options: RunSandboxedOptions): Promise<SandboxResult> {
    return runSandboxed(command, this.#merge(options));
  }

  /** Starts `command` in the background (see {@link spawnBackground}). */
  spawnBackground(
    command: SandboxCommand,
    options: SpawnBackgroundOptions,
  ): Promise<SandboxProcess> {
    return spawnBackground(command, this.#merge(options));
  }

  #merge<T extends SandboxOptions>(options: T): T {
    const d = this.#defaults;
    const join = (a?: readonly string[], b?: readonly string[]) =>
      a === undefined && b === undefined ? undefined : [...(a ?? []), ...(b ?? [])];
    return {
      ...d,
      ...options,
      readOnlyPaths: join(d.readOnlyPaths, options.readOnlyPaths),
      writablePaths: join(d.writablePaths, options.writablePaths),
      hidePaths: join(d.hidePaths, options.hidePaths),
    };
  }
}
