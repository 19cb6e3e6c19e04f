/**
 * The daemon: the kernel process a frontend talks to over `run/system.sock`.
 *
 * {@link bootDaemon} runs the boot sequence (`docs/daemon.md`):
 * home → config → log → lock → store → runtime key → audit log → event bus → identity →
 * capsules → socket → background tasks (management router, connection tracker, idle monitor,
 * storm monitor) → `run/system.ready`.
 *
 * The boot code and everything it needs (storage, audit, crypto, config, the bus) is loaded by
 * `bootDaemon` itself, so importing this folder's `mod.ts` for the client costs nothing of it.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { AuditLog } from "../audit/mod.ts";
import type { AstridConfig, EnvSource } from "../config/mod.ts";
import type { KeyPair } from "../crypto/mod.ts";
import type { EventBus, Timers } from "../events/mod.ts";
import type { AstridHome } from "../home/mod.ts";
import type { McpEngine } from "../mcp/mod.ts";
import type { SqliteStore } from "../storage/mod.ts";
import type { ApprovalBridge } from "./approval_bridge.ts";
import type { CapsuleHost } from "./capsule_host.ts";
import type { ConnectionTracker } from "./connection_tracker.ts";
import type { OverlayService } from "./overlay_service.ts";
import type { DaemonStatusWire } from "./protocol.ts";
import type { RunPaths } from "./run_paths.ts";

/** The booted kernel parts a capsule runtime (and later the orchestrator wiring) receives. */
export interface KernelParts {
  /** The Astrid home. */
  readonly home: AstridHome;
  /** The merged configuration. */
  readonly config: AstridConfig;
  /** The store. */
  readonly store: SqliteStore;
  /** The runtime signing key. */
  readonly runtimeKey: KeyPair;
  /** The audit log. */
  readonly audit: AuditLog;
  /** The event bus. */
  readonly bus: EventBus;
  /** The kernel's clock. */
  readonly clock: Clock;
}

/** Options of {@link bootDaemon}. */
export interface DaemonOptions {
  /** The Astrid home (default: `$ASTRID_HOME`, else `~/.astrid`). */
  home?: string;
  /** Exit when the last client leaves (`astrid daemon --ephemeral`). */
  ephemeral?: boolean;
  /** The environment (default `Deno.env`): config env layer and home lookup. */
  env?: EnvSource;
  /** Where time comes from (default the system clock). */
  clock?: Clock;
  /** Schedules idle checks, the hello timeout and bus timeouts (default real timers). */
  timers?: Timers;
  /** Builds the capsule host from the booted parts (default: no capsules). */
  capsules?: (kernel: KernelParts) => CapsuleHost | Promise<CapsuleHost>;
  /** Overrides `runtime.idle_timeout_secs`. */
  idleTimeoutSecs?: number;
  /** Ephemeral: ms between the last client leaving and shutdown (default 2,000). */
  ephemeralGraceMs?: number;
  /** Ms a new connection has to send its hello (default 5,000). */
  helloTimeoutMs?: number;
  /** Most authenticated and pending connections at once (default 1,024). */
  maxConnections?: number;
  /** Also write log lines to stderr (default: when stderr is a terminal). */
  echoLog?: boolean;
  /** Called when the last connection of a (principal, session) closes (e.g. `AllowanceStore.endSession`). */
  onSessionEnded?: (principal: string, session: string) => void;
}

/** How a daemon ended. */
export interface ShutdownInfo {
  /** Why it stopped. */
  readonly reason: string;
  /** Problems met while stopping (each also logged); empty when clean. */
  readonly problems: readonly string[];
}

/** A running daemon. */
export interface Daemon extends KernelParts {
  /** Its process id. */
  readonly pid: number;
  /** Its run files. */
  readonly paths: RunPaths;
  /** When boot began, ms since the epoch. */
  readonly startedAt: number;
  /** How long boot took, in ms. */
  readonly bootMs: number;
  /** True when it exits after its last client. */
  readonly ephemeral: boolean;
  /** The capsule host. */
  readonly capsules: CapsuleHost;
  /** Authenticated connections and sessions. */
  readonly connections: ConnectionTracker;
  /** The approval broker: frontends attached per session, questions over the bus. */
  readonly approvals: ApprovalBridge;
  /** The session overlays frontends diff, commit and discard. */
  readonly overlays: OverlayService;
  /** The MCP engine serving MCP servers' tools on the bus (absent with a custom capsule host). */
  readonly mcp: McpEngine | undefined;
  /** Resolves once the daemon has fully stopped and its run files are gone. */
  readonly closed: Promise<ShutdownInfo>;
  /** The status, as the `status` method returns it. */
  status(): DaemonStatusWire;
  /** Makes it ephemeral or persistent from now on. */
  setEphemeral(ephemeral: boolean): void;
  /** Shuts down gracefully (idempotent); resolves like {@link closed}. */
  shutdown(reason: string): Promise<ShutdownInfo>;
}

/**
 * Boots a daemon for `options.home`. Rejects with `DAEMON_ALREADY_RUNNING` (another daemon owns
 * the home), `DAEMON_SOCKET_PATH_TOO_LONG`, `DAEMON_SOCKET_IN_USE`, `DAEMON_UNSAFE_PATH`, or
 * `DAEMON_BOOT_FAILED` naming the step; whatever was opened before a failure is closed again.
 */
export async function bootDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  // A computed specifier keeps the kernel's graph out of clients that import this module.
  const { boot } = await import(new URL("./_boot.ts", import.meta.url).href) as {
    boot: (options: DaemonOptions) => Promise<Daemon>;
  };
  return await boot(options);
}
