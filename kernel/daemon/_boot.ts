/**
 * The boot sequence (loaded by `bootDaemon`, so a client never loads it):
 *
 * 1. home — `AstridHome.open` (0700 layout); the socket path length is checked at once
 * 2. config — `loadConfig` (env, system, user layers); `runtime.idle_timeout_secs`
 * 3. lock — `run/` is checked (a real dir, ours, 0700), then `run/system.lock` is locked
 *    (flock); a second daemon stops here
 * 4. log — `log/daemon.log`; the stale `system.ready` and `system.token` of a crashed daemon
 *    are removed
 * 5. store — `SqliteStore.open(var/state.db)`
 * 6. runtime key — `KeyPair.loadOrCreate(keys/runtime.key)`
 * 7. audit log — signed by the runtime key
 * 8. event bus — ACL denials audited, storm monitor asks "is any client attached"
 * 9. identity — the principal registry; `default` recorded
 * 10. capsules — the capsule host (default: the capsule runtime, `_runtime_capsule_host.ts`)
 *     loads the operator's capsules; `astrid.v1.capsules_loaded` published
 * 11. token — 256-bit CSPRNG session token, `run/system.token` (0600, atomic)
 * 12. socket — symlink removed, stale socket probed and removed, `run/system.sock` bound (0600)
 * 13. background tasks — management router, connection tracker → idle monitor, storm check
 * 14. ready — `run/system.ready` (0600, atomic)
 *
 * A failure undoes the steps before it in reverse order and rejects.
 *
 * @module
 */
import { AuditLog } from "../audit/mod.ts";
import { type Clock, systemClock } from "../clock.ts";
import { loadConfig } from "../config/mod.ts";
import { KeyPair, toHex } from "../crypto/mod.ts";
import {
  type BusAuditSink,
  EventBus,
  StormMonitor,
  systemTimers,
  type Timers,
} from "../events/mod.ts";
import { AstridError } from "../errors.ts";
import { AstridHome, atomicWrite, resolveHomePath } from "../home/mod.ts";
import { DEFAULT_PRINCIPAL } from "../identity/mod.ts";
import { installLlmBudget, installToolGuard, type ToolCallScope } from "../security/mod.ts";
import { SqliteStore } from "../storage/mod.ts";
import { McpEngine } from "../mcp/mod.ts";
import { NativeSandbox } from "../sandbox/mod.ts";
import { BusElicitor } from "../../host_abi/mod.ts";
import { VERSION } from "../version.ts";
import { ApprovalBridge } from "./approval_bridge.ts";
import type { CapsuleHost } from "./capsule_host.ts";
import { ConnectionTracker } from "./connection_tracker.ts";
import type { Daemon, DaemonOptions, KernelParts } from "./daemon.ts";
import { DaemonCode, DaemonError } from "./errors.ts";
import { IdleMonitor } from "./idle_monitor.ts";
import { OverlayService } from "./overlay_service.ts";
import {
  CAPSULES_LOADED_TOPIC,
  PROTOCOL_VERSION,
  SESSION_ENDED_TOPIC,
  SHUTDOWN_TOPIC,
} from "./protocol.ts";
import { checkSocketPath, runPaths } from "./run_paths.ts";
import { SlidingWindowLimiter } from "./sliding_window_limiter.ts";
import { DaemonLog } from "./_daemon_log.ts";
import { InstanceLock } from "./_instance_lock.ts";
import { KernelDaemon, removeIfPresent } from "./_kernel_daemon.ts";
import { ManagementRouter } from "./_management_router.ts";
import { runCapsuleCommand } from "./_capsule_command.ts";
import { PrincipalRegistry } from "./_principal_registry.ts";
import { RuntimeCapsuleHost } from "./_runtime_capsule_host.ts";
import { checkRunDir, prepareSocketPath } from "./_socket_guard.ts";
import { SocketServer } from "./_socket_server.ts";

const DEFAULT_HELLO_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_CONNECTIONS = 1_024;
const STORM_CHECK_MS = 5_000;
const KERNEL_SOURCE = { kind: "kernel", name: "daemon" } as const;

/**
 * Model-call routes that only republish to other routes (the first-party `router` capsule,
 * `docs/capsules/router.md`): the budget guard does not meter them, since each attempt they
 * republish on a provider route is metered as its own reservation (DESIGN §6.3).
 */
export const ROUTER_ROUTES: readonly string[] = Object.freeze(["router"]);

/** Boots a daemon; see the module doc. */
export async function boot(options: DaemonOptions): Promise<Daemon> {
  const clock: Clock = options.clock ?? systemClock;
  const timers: Timers = options.timers ?? systemTimers;
  const env = options.env ?? Deno.env;
  const startedAt = clock.now();
  const t0 = performance.now();
  const undo: { what: string; fn: () => unknown }[] = [];
  const timings: Record<string, number> = {};
  let log: DaemonLog | undefined;
  let current = "home";
  const step = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    current = name;
    const s = performance.now();
    const r = await fn();
    timings[name] = Math.round((performance.now() - s) * 10) / 10;
    return r;
  };

  try {
    const home = await step("home", () => AstridHome.open(options.home ?? resolveHomePath(env)));
    const paths = runPaths(home.root);
    checkSocketPath(paths.socket);
    const loaded = await step("config", () => loadConfig({ homeDir: home.root, env }));
    const config = loaded.config;
    await checkRunDir(paths.run); // before the lock file is created inside it
    const lock = await step("lock", () => InstanceLock.acquire(paths.lock, home.root));
    undo.push({ what: "lock", fn: () => lock.release() });
    // The log opens under the lock, so only the owner of the home rotates it.
    const echo = options.echoLog ?? Deno.stderr.isTerminal();
    log = await step("log", () => DaemonLog.open(paths.log, { echo, clock }));
    const daemonLog = log;
    undo.push({ what: "log", fn: () => daemonLog.close() });
    for (const w of loaded.warnings) daemonLog.warn("Config warning", { ...w });
    await removeIfPresent(paths.ready);
    await removeIfPresent(paths.token);

    const store = await step("store", () => SqliteStore.open(home.statePath));
    undo.push({ what: "store", fn: () => store.close() });
    const runtimeKey = await step("runtime_key", () => KeyPair.loadOrCreate(home.runtimeKeyPath));
    const audit = new AuditLog(store, { signer: runtimeKey, clock });
    undo.push({ what: "audit", fn: () => audit.close() });

    const connections = new ConnectionTracker();
    const storm = new StormMonitor({
      clock,
      clientAttached: () => connections.total > 0,
      logger: daemonLog,
    });
    const bus = new EventBus({
      clock,
      timers,
      logger: daemonLog,
      audit: busAuditSink(audit),
      stormMonitor: storm,
    });
    undo.push({ what: "bus", fn: () => bus.close() });

    const principals = new PrincipalRegistry(store, home, clock);
    await step("identity", () => principals.ensure(DEFAULT_PRINCIPAL, "boot"));

    // Approvals and elicitations travel to the frontends attached to a session over the bus;
    // session overlays are served to frontends (diff/commit/discard).
    const approvals = new ApprovalBridge(bus, { log: daemonLog });
    undo.push({ what: "approvals", fn: () => approvals.close() });
    const overlays = new OverlayService(home, { clock });

    const parts: KernelParts = { home, config, store, runtimeKey, audit, bus, clock };
    // Set once the MCP engine is up: a call only its tools answer is authorized there (native).
    let mcpOnly: (call: ToolCallScope) => boolean = () => false;
    const capsules: CapsuleHost = await step("capsules", async () => {
      const host = options.capsules !== undefined
        ? await options.capsules(parts)
        : new RuntimeCapsuleHost(parts, { log: daemonLog, timers, approvals });
      undo.push({ what: "capsules", fn: () => host.close() });
      if (host instanceof RuntimeCapsuleHost) {
        // Model calls reserve their estimate before any provider capsule sees them (DESIGN §6.3).
        const llm = installLlmBudget(bus, {
          security: host.security,
          config,
          timers,
          logger: daemonLog,
          routers: ROUTER_ROUTES,
        });
        // A provider's HTTP counts as the model call only while the guard metered that call.
        host.meterModelCalls(llm);
        undo.push({ what: "llm_budget", fn: () => llm.close() });
        bus.listen(SHUTDOWN_TOPIC, () => llm.close(), { name: "llm_budget_shutdown" });
        // Every tool call is a `tool.execute` decision (the modes table's tool row) before any
        // capsule sees it; an unanswerable one is announced, so `-p` exits 3.
        const tools = installToolGuard(bus, {
          security: approvals.observe(host.security),
          selfAuthorizing: (call) => mcpOnly(call),
          timeoutMs: (config.security.approval.timeout_secs + 60) * 1000,
        });
        undo.push({ what: "tool_guard", fn: () => tools.close() });
      }
      const report = await host.load();
      for (const f of report.failed) {
        daemonLog.error("Capsule failed to load", { capsule: f.name, error: f.error });
      }
      await bus.publish(CAPSULES_LOADED_TOPIC, { capsules: [...report.loaded] }, {
        ctx: { principal: DEFAULT_PRINCIPAL, source: KERNEL_SOURCE },
      });
      return host;
    });

    const runtime = capsules instanceof RuntimeCapsuleHost ? capsules : undefined;
    // The capsules' VFS routing learns workspace roots from the hellos that bind sessions.
    let mcp: McpEngine | undefined;
    if (runtime !== undefined) {
      overlays.onRemember((id, root) => void runtime.workspaces.remember(id, root));
      // MCP servers (etc/servers.toml and the capsules' [[mcp_server]] entries) serve their
      // tools on the bus through the very pipeline the capsules' host calls use, so an Allow
      // Session given to one holds for the other. A running server yields its session before
      // a diff; it closes before the capsules at shutdown (undo runs in reverse).
      const engine = await step("mcp", () =>
        McpEngine.open({
          home,
          bus,
          audit,
          clock,
          timers,
          security: approvals.observe(runtime.security),
          workspaceRoot: (id) => overlays.root(id),
          sandbox: new NativeSandbox({ policy: config.security.policy, hidePaths: [home.root] }),
          elicitor: new BusElicitor(bus, { reach: (p, s) => approvals.reach(p, s) }),
          capsules: runtime.registry,
          log: (e) => daemonLog.warn(e.message, { server: e.server }),
        }));
      undo.push({ what: "mcp", fn: () => engine.close() });
      overlays.onBeforeAccess((scope) => engine.settle(scope));
      mcp = engine;
      // The engine authorizes its own tools' calls (native, with their paths); a name any loaded
      // capsule's [[tool]] also has is decided by the tool guard as well.
      const registry = runtime.registry;
      // MCP tools are named `<server>__<tool>`: any other name is decided here at no cost.
      mcpOnly = (call) =>
        call.tool.includes("__") &&
        engine.host.tools({ principal: call.principal }).some((t) => t.name === call.tool) &&
        !registry.listAll().some((c) =>
          registry.capsule(c.key)?.record.manifest.tool.some((t) => t.name === call.tool) === true
        );
    }

    const token = toHex(crypto.getRandomValues(new Uint8Array(32)));
    await step("token", () => atomicWrite(paths.token, token + "\n", { mode: 0o600 }));
    undo.push({ what: "token", fn: () => removeIfPresent(paths.token) });

    const found = await step("socket", () => prepareSocketPath(paths.socket));
    if (found === "removed_symlink") {
      daemonLog.warn("Removed a symlink at the socket path", { path: paths.socket });
    } else if (found === "removed_stale") {
      daemonLog.info("Removed a stale socket", { path: paths.socket });
    }
    const listener = Deno.listen({ transport: "unix", path: paths.socket });
    undo.push({
      what: "listener",
      fn: () => {
        try {
          listener.close();
        } catch {
          // Already closed.
        }
      },
    });
    await Deno.chmod(paths.socket, 0o600);

    const idleTimeoutSecs = options.idleTimeoutSecs ?? config.runtime.idle_timeout_secs;
    const daemon = new KernelDaemon({
      home,
      config,
      store,
      runtimeKey,
      audit,
      bus,
      clock,
      timers,
      paths,
      log: daemonLog,
      lock,
      capsules,
      connections,
      principals,
      approvals,
      overlays,
      mcp,
      idleTimeoutSecs,
      startedAt,
    }, options.ephemeral === true);

    const router = new ManagementRouter({
      bus,
      capsules,
      audit,
      log: daemonLog,
      clock,
      reloadLimiter: new SlidingWindowLimiter(clock, { limit: 5, windowMs: 60_000 }),
      status: (principal) => daemon.status(principal),
      shutdown: (reason) => void daemon.shutdown(reason),
    });
    const server = new SocketServer(listener, {
      token,
      socketPath: paths.socket,
      bus,
      audit,
      log: daemonLog,
      tracker: connections,
      principals,
      router,
      timers,
      helloTimeoutMs: options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
      stopping: () => daemon.stopping,
      status: (principal) => daemon.status(principal),
      persist: () => daemon.setEphemeral(false),
      shutdown: (reason) => void daemon.shutdown(reason),
      approvals,
      overlays,
      ...(runtime === undefined ? {} : {
        runCommand: (scope, name, args) =>
          runCapsuleCommand(runtime.registry, scope, { name, args }),
      }),
    }, { log: daemonLog, maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS });
    const idle = new IdleMonitor({
      timers,
      idleTimeoutMs: idleTimeoutSecs * 1000,
      ephemeral: options.ephemeral === true,
      graceMs: options.ephemeralGraceMs,
      keepAlive: () => capsules.keepsAlive(),
      onIdle: (reason) => void daemon.shutdown(reason),
    });
    connections.onChange((total) => idle.connections(total));
    connections.onSessionEnded((principal, session) => {
      try {
        // Allow Session lasts while any connection of the session stays attached.
        runtime?.security.endSession(principal, session);
        options.onSessionEnded?.(principal, session);
      } catch (err) {
        daemonLog.error("A session-ended callback failed", { error: String(err) });
      }
      bus.publish(SESSION_ENDED_TOPIC, { session }, {
        ctx: { principal: principal as typeof DEFAULT_PRINCIPAL, source: KERNEL_SOURCE },
      }).catch(() => {});
    });
    let stormTimer: unknown;
    const stormTick = () => {
      storm.check();
      stormTimer = timers.setTimeout(stormTick, STORM_CHECK_MS);
    };
    stormTimer = timers.setTimeout(stormTick, STORM_CHECK_MS);
    const stopStorm = () => timers.clearTimeout(stormTimer);

    router.start();
    server.start();
    idle.start();
    daemon.attach({ server, router, idle, stopStorm });
    undo.push({
      what: "background tasks",
      fn: async () => {
        idle.stop();
        stopStorm();
        router.stop();
        await server.closeAll("boot failed");
      },
    });
    current = "ready";
    await atomicWrite(
      paths.ready,
      JSON.stringify({
        pid: Deno.pid,
        version: VERSION,
        protocol: PROTOCOL_VERSION,
        started_at: startedAt,
      }) +
        "\n",
      { mode: 0o600 },
    );
    daemon.bootMs = Math.round(performance.now() - t0);
    daemonLog.info("Ready", {
      pid: Deno.pid,
      version: VERSION,
      home: home.root,
      ephemeral: options.ephemeral === true,
      idle_timeout_secs: idleTimeoutSecs,
      boot_ms: daemon.bootMs,
      steps_ms: timings,
    });
    return daemon;
  } catch (err) {
    log?.error("Boot failed", { step: current, error: String((err as Error)?.message ?? err) });
    for (const u of undo.reverse()) {
      try {
        await u.fn();
      } catch (e) {
        log?.error(`Boot rollback step "${u.what}" failed`, { error: String(e) });
      }
    }
    if (err instanceof AstridError) throw err;
    throw new DaemonError(
      DaemonCode.DAEMON_BOOT_FAILED,
      `Cannot boot the daemon: step "${current}" failed: ${(err as Error)?.message ?? String(err)}`,
      { data: { step: current }, cause: err },
    );
  }
}

function busAuditSink(audit: AuditLog): BusAuditSink {
  return {
    denied: async (d) => {
      await audit.append({
        principal: d.principal,
        action: `bus.${d.op}`,
        resource: `topic:${d.topic}`,
        decision: "denied",
        reason: `Not covered by the [${d.op}] list of capsule "${d.capsule}"`,
        layer: "bus",
        rule: `${d.capsule}:[${d.op}]`,
        decider: "manifest",
        details: JSON.stringify({ source: `${d.source.kind}:${d.source.name}` }),
      });
    },
  };
}
