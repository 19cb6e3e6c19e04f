/**
 * The running daemon: holds the booted parts, serves `status`, and runs the graceful shutdown.
 *
 * Shutdown, in order (each step's failure is logged and the next still runs):
 * stop the idle and storm timers → remove `run/system.ready` → publish `astrid.v1.shutdown` →
 * stop accepting (the socket file goes) → unload capsules → `bye` every connection → stop the
 * management router → close the bus → flush and close the audit log → close the store →
 * remove the socket (if still there) and `run/system.token` → remove `run/system.lock` and
 * release it → close the log.
 *
 * @module
 */
import type { AuditLog } from "../audit/mod.ts";
import type { Clock } from "../clock.ts";
import type { AstridConfig } from "../config/mod.ts";
import type { KeyPair } from "../crypto/mod.ts";
import type { EventBus, Timers } from "../events/mod.ts";
import type { AstridHome } from "../home/mod.ts";
import type { McpEngine } from "../mcp/mod.ts";
import { DEFAULT_PRINCIPAL } from "../identity/mod.ts";
import type { SqliteStore } from "../storage/mod.ts";
import { VERSION } from "../version.ts";
import type { ApprovalBridge } from "./approval_bridge.ts";
import type { CapsuleHost } from "./capsule_host.ts";
import type { ConnectionTracker } from "./connection_tracker.ts";
import type { Daemon, ShutdownInfo } from "./daemon.ts";
import type { IdleMonitor } from "./idle_monitor.ts";
import type { OverlayService } from "./overlay_service.ts";
import { type DaemonStatusWire, PROTOCOL_VERSION, SHUTDOWN_TOPIC } from "./protocol.ts";
import type { RunPaths } from "./run_paths.ts";
import type { DaemonLog } from "./_daemon_log.ts";
import type { InstanceLock } from "./_instance_lock.ts";
import type { ManagementRouter } from "./_management_router.ts";
import type { PrincipalRegistry } from "./_principal_registry.ts";
import type { SocketServer } from "./_socket_server.ts";

/** Everything boot built. */
export interface DaemonParts {
  readonly home: AstridHome;
  readonly config: AstridConfig;
  readonly store: SqliteStore;
  readonly runtimeKey: KeyPair;
  readonly audit: AuditLog;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly paths: RunPaths;
  readonly log: DaemonLog;
  readonly lock: InstanceLock;
  readonly capsules: CapsuleHost;
  readonly connections: ConnectionTracker;
  readonly principals: PrincipalRegistry;
  readonly approvals: ApprovalBridge;
  readonly overlays: OverlayService;
  readonly mcp: McpEngine | undefined;
  readonly idleTimeoutSecs: number;
  readonly startedAt: number;
}

/** The parts that exist only once the socket is up. */
export interface DaemonServices {
  readonly server: SocketServer;
  readonly router: ManagementRouter;
  readonly idle: IdleMonitor;
  readonly stopStorm: () => void;
}

const KERNEL_CTX = {
  principal: DEFAULT_PRINCIPAL,
  source: { kind: "kernel", name: "daemon" },
} as const;

/** The daemon; see the module doc. */
export class KernelDaemon implements Daemon {
  readonly pid = Deno.pid;
  readonly home: AstridHome;
  readonly config: AstridConfig;
  readonly store: SqliteStore;
  readonly runtimeKey: KeyPair;
  readonly audit: AuditLog;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly paths: RunPaths;
  readonly capsules: CapsuleHost;
  readonly connections: ConnectionTracker;
  readonly principals: PrincipalRegistry;
  readonly approvals: ApprovalBridge;
  readonly overlays: OverlayService;
  readonly mcp: McpEngine | undefined;
  readonly startedAt: number;
  readonly closed: Promise<ShutdownInfo>;
  bootMs = 0;
  readonly #parts: DaemonParts;
  #services: DaemonServices | undefined;
  #ephemeral: boolean;
  #stopping: Promise<ShutdownInfo> | undefined;
  #resolveClosed!: (info: ShutdownInfo) => void;

  /** Wraps booted parts; {@link attach} adds the socket services. */
  constructor(parts: DaemonParts, ephemeral: boolean) {
    this.#parts = parts;
    this.home = parts.home;
    this.config = parts.config;
    this.store = parts.store;
    this.runtimeKey = parts.runtimeKey;
    this.audit = parts.audit;
    this.bus = parts.bus;
    this.clock = parts.clock;
    this.paths = parts.paths;
    this.capsules = parts.capsules;
    this.connections = parts.connections;
    this.principals = parts.principals;
    this.approvals = parts.approvals;
    this.overlays = parts.overlays;
    this.mcp = parts.mcp;
    this.startedAt = parts.startedAt;
    this.#ephemeral = ephemeral;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Adds the services started after the socket was bound. */
  attach(services: DaemonServices): void {
    this.#services = services;
  }

  /** True when it exits after its last client. */
  get ephemeral(): boolean {
    return this.#ephemeral;
  }

  /** True once shutdown began. */
  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** The status as `principal` (default `default`) sees it. */
  status(principal: string = DEFAULT_PRINCIPAL): DaemonStatusWire {
    const stats = this.bus.stats();
    const published = stats.counters.published;
    return {
      pid: this.pid,
      version: VERSION,
      protocol: PROTOCOL_VERSION,
      home: this.home.root,
      socket: this.paths.socket,
      started_at: this.startedAt,
      uptime_ms: Math.max(0, this.clock.now() - this.startedAt),
      boot_ms: this.bootMs,
      ephemeral: this.#ephemeral,
      idle_timeout_secs: this.#parts.idleTimeoutSecs,
      connections: {
        total: this.connections.total,
        by_principal: this.connections.byPrincipal(),
      },
      sessions: this.connections.sessions,
      capsules: this.capsules.list(principal) as unknown as DaemonStatusWire["capsules"],
      bus: {
        subscriptions: stats.gauges.subscriptions,
        published: published.json + published.bytes,
      },
    };
  }

  /** Makes it ephemeral or persistent from now on. */
  setEphemeral(ephemeral: boolean): void {
    if (this.#ephemeral === ephemeral) return;
    this.#ephemeral = ephemeral;
    this.#services?.idle.setEphemeral(ephemeral);
    this.#parts.log.info(ephemeral ? "Now ephemeral" : "Now persistent");
  }

  /** Shuts down gracefully; idempotent. */
  shutdown(reason: string): Promise<ShutdownInfo> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<ShutdownInfo> {
    const p = this.#parts;
    const s = this.#services;
    const problems: string[] = [];
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error)?.message ?? String(err)}`);
        p.log.error(`Shutdown step "${what}" failed`, { error: String(err) });
      }
    };
    p.log.info("Shutting down", { reason });
    s?.idle.stop();
    s?.stopStorm();
    await step("ready", () => removeIfPresent(p.paths.ready));
    await step(
      "publish",
      () => p.bus.publish(SHUTDOWN_TOPIC, { reason, pid: this.pid }, { ctx: KERNEL_CTX }),
    );
    await step("socket", () => s?.server.stopAccepting());
    await step("capsules", () => p.capsules.close());
    await step("connections", () => s?.server.closeAll(reason));
    s?.router.stop();
    p.approvals.close();
    await step("bus", () => p.bus.close());
    await step("audit", () => p.audit.close());
    await step("store", () => p.store.close());
    await step("socket file", () => removeIfPresent(p.paths.socket));
    await step("token", () => removeIfPresent(p.paths.token));
    await step("lock", () => p.lock.release());
    p.log.info("Stopped", { reason, problems: problems.length });
    p.log.close();
    const info: ShutdownInfo = { reason, problems };
    this.#resolveClosed(info);
    return info;
  }
}

/** Removes `path`; absent is fine. */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
