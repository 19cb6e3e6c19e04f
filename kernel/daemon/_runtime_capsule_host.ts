/**
 * The daemon's capsule host: the capsule runtime wired to the booted kernel (loaded by boot,
 * never by a client). It builds
 *
 * - the security pipeline for host calls (`SecurityInterceptor` over the audit log, the token
 *   store, and the daemon's `ApprovalBridge`, which carries approvals and elicitations to the
 *   frontends attached to the session over the bus; without one, an in-process broker nobody
 *   attaches to, so a call needing a human waits, then times out as DESIGN §3a says for "no
 *   frontend");
 * - the `WasmEngine` (host ABI table, the dispatcher, guest logs to
 *   `home/{p}/.local/log/<capsule>.log` with ERROR lines in the daemon log);
 * - the `CapsuleRegistry` (workspace capsules trusted through the store,
 *   `StoreWorkspaceTrust`, which `TrustCapsule`/`UntrustCapsule` change through
 *   {@link RuntimeCapsuleHost.workspaceTrust}) and the `CapsuleHostServices` each host call is
 *   resolved with;
 *
 * and keeps them in step with the daemon: a principal's own capsules load when it first
 * connects (`client.v1.connect`), a workspace's trusted capsules when a session is first bound
 * to it (the daemon tells {@link WorkspaceDirectory.remember}), a session's overlays are
 * dropped when it ends (`astrid.v1.session.ended`). `load()` and `reload()` leave `astrid.v1.capsules_loaded` to
 * the daemon, which publishes it after each.
 *
 * @module
 */
import { TokenStore } from "../capabilities/mod.ts";
import {
  CapsuleHostServices,
  type CapsuleInfo,
  type CapsuleInvocation,
  CapsuleRegistry,
  discoverCapsules,
  type LoadReport,
  StoreWorkspaceTrust,
  trustSubject,
  WorkspaceDirectory,
  workspaceRoots,
} from "../capsule/mod.ts";
import { DEFAULT_PRINCIPAL } from "../identity/mod.ts";
import { WasmEngine } from "../capsule/engine/wasm/mod.ts";
import type { BusMessage, Interceptor, JsonValue, Listener, Timers } from "../events/mod.ts";
import { NativeSandbox } from "../sandbox/mod.ts";
import { InProcessApprovalBroker, type LlmBudget, SecurityInterceptor } from "../security/mod.ts";
import { IdentityStore } from "../identity/mod.ts";
import {
  BusElicitor,
  CapsuleLogWriter,
  createHostHandler,
  ELICITATION_SERVICE,
  guestLogSink,
  hostFunctionSpecs,
  HTTP_SERVICE,
  IDENTITY_SERVICE,
  PROCESS_SERVICE,
  provide,
  UPLINK_SERVICE,
  UplinkRegistry,
} from "../../host_abi/mod.ts";
import type { ApprovalBridge } from "./approval_bridge.ts";
import type {
  CapsuleHost,
  CapsuleSummary,
  CommandSummary,
  PromptContextSource,
  ReloadReport,
  TrustDecisionWire,
  WorkspaceCapsuleWire,
  WorkspaceTrustHost,
  WorkspaceTrustView,
} from "./capsule_host.ts";
import type { KernelParts } from "./daemon.ts";
import type { DaemonLog } from "./_daemon_log.ts";
import { CLIENT_CONNECT_TOPIC, SESSION_ENDED_TOPIC } from "./protocol.ts";

/** What the runtime host needs beside the kernel parts. */
export interface RuntimeHostDeps {
  /** The daemon log. */
  readonly log: DaemonLog;
  /** The daemon's timers (uplink ready timeouts, restart backoff, cron). */
  readonly timers: Timers;
  /**
   * The approval broker frontends attach to (`approval_bridge.ts`); host calls' approvals and
   * elicitations go through it. Default: an in-process broker nobody attaches to.
   */
  readonly approvals?: ApprovalBridge;
}

/** The capsule runtime as the daemon sees it; see the module doc. */
export class RuntimeCapsuleHost implements CapsuleHost {
  /** The registry. */
  readonly registry: CapsuleRegistry;
  /** The engine. */
  readonly engine: WasmEngine<CapsuleInvocation>;
  /** Host-call services. */
  readonly services: CapsuleHostServices;
  /** Workspace roots by id. */
  readonly workspaces: WorkspaceDirectory;
  /** The security pipeline host calls go through (the daemon ends sessions' allowances on it). */
  readonly security: SecurityInterceptor;
  /** Workspace trust for `TrustCapsule` and `UntrustCapsule`. */
  readonly workspaceTrust: WorkspaceTrustHost;
  readonly #kernel: KernelParts;
  readonly #deps: RuntimeHostDeps;
  readonly #logs: CapsuleLogWriter;
  readonly #listeners: Listener[] = [];
  #modelCalls: Pick<LlmBudget, "metered"> | undefined;
  readonly #connect: Interceptor;

  /** Wires the runtime to `kernel`; nothing loads until {@link load}. */
  constructor(kernel: KernelParts, deps: RuntimeHostDeps) {
    this.#kernel = kernel;
    this.#deps = deps;
    const { home, bus, store, audit, clock, config, runtimeKey } = kernel;
    const log = deps.log;
    this.#logs = new CapsuleLogWriter(home, { daemonLog: log });
    const broker = deps.approvals ?? new InProcessApprovalBroker();
    const security = new SecurityInterceptor({
      config,
      audit,
      tokens: new TokenStore(store, { clock, trustedIssuers: [runtimeKey.publicKey] }),
      store,
      signer: runtimeKey,
      broker,
      clock,
      timers: deps.timers,
    });
    this.security = security;
    // Elicitations reach the session's frontends over the bus (`astrid.v1.elicit.<id>`).
    const elicitor = new BusElicitor(bus, {
      reach: (p, s) => broker.reach(p, s),
      now: () => clock.now(),
    });
    // Identity links (identity_* host calls) and the uplinks that inject user turns.
    const identity = new IdentityStore(store, { clock, homes: home });
    const uplinks = new UplinkRegistry(bus, { identity, clock });
    // HTTP checks the policy's denied hosts against resolved addresses (and, once boot gave the
    // budget guard's ledger, marks a metered model call's request); native commands run in the
    // namespace sandbox over the session overlay, the Astrid home hidden.
    const http = { policy: config.security.policy };
    const processes = {
      sandbox: new NativeSandbox({ policy: config.security.policy, hidePaths: [home.root] }),
    };
    this.workspaces = new WorkspaceDirectory();
    // The dispatcher resolves each call through the services, built once the registry exists.
    const ref: { services?: CapsuleHostServices } = {};
    this.engine = new WasmEngine<CapsuleInvocation>({
      hostFunctions: hostFunctionSpecs(),
      handler: createHostHandler((call) => ref.services!.context(call), {
        onError: (error, fn, call) =>
          log.error("Host function failed", {
            fn,
            capsule: call.capsule,
            principal: call.principal,
            error: String((error as Error)?.message ?? error),
          }),
      }),
      onLog: guestLogSink(this.#logs),
      clock,
      pool: config.runtime.max_instances > 0
        ? { maxInstances: config.runtime.max_instances }
        : undefined,
    });
    const trust = new StoreWorkspaceTrust(store, { clock });
    this.registry = new CapsuleRegistry({
      home,
      bus,
      engine: this.engine,
      clock,
      timers: deps.timers,
      log,
      workspaceTrust: trust,
    });
    this.workspaceTrust = new RuntimeWorkspaceTrust(trust, {
      kernel,
      registry: this.registry,
      workspaces: this.workspaces,
    });
    const services = new CapsuleHostServices({
      home,
      store,
      bus,
      registry: this.registry,
      // An unanswerable approval is announced to the session (`astrid -p` exits 3).
      security: deps.approvals?.observe(security) ?? security,
      audit,
      logs: this.#logs,
      clock,
      timers: deps.timers,
      workspaces: this.workspaces,
      extensions: () => [
        provide(ELICITATION_SERVICE, elicitor),
        provide(IDENTITY_SERVICE, identity),
        provide(UPLINK_SERVICE, uplinks),
        provide(
          HTTP_SERVICE,
          this.#modelCalls === undefined ? http : {
            ...http,
            modelCalls: this.#modelCalls,
          },
        ),
        provide(PROCESS_SERVICE, processes),
      ],
    });
    ref.services = services;
    this.services = services;
    // A session bound to a workspace: its trusted workspace capsules load (once).
    this.workspaces.onRemember((id, root) => this.#onWorkspace(id, root));
    // An interceptor, not a listener: the connection awaits this publish before its welcome, so
    // a principal's own capsules are loaded before its first prompt can reach the shadowed
    // system ones.
    this.#connect = bus.intercept(CLIENT_CONNECT_TOPIC, async (msg) => {
      await this.#onConnect(msg);
      return { action: "continue" };
    }, { name: "kernel:capsules.connect", guard: false });
    this.#listeners.push(
      bus.listen(SESSION_ENDED_TOPIC, (msg) => this.#onSessionEnded(msg), {
        name: "kernel:capsules.session_ended",
      }),
    );
  }

  /**
   * Gives host calls the budget guard's record of allowed, unsettled model calls (boot installs
   * the guard after this host exists): a provider's HTTP request made while serving one is the
   * model call (`modelCall`). Until then, and without it, no request is.
   */
  meterModelCalls(calls: Pick<LlmBudget, "metered">): void {
    this.#modelCalls = calls;
  }

  /** Loads the operator's capsules (the daemon announces them). */
  async load(): Promise<ReloadReport> {
    const seeded = await this.workspaces.seedFromInstalls(await workspaceRoots(this.#kernel.home));
    if (seeded > 0) this.#deps.log.info("Workspace roots known", { count: seeded });
    return toReloadReport(await this.registry.load({ announce: false }));
  }

  /** The capsules `principal` sees. */
  list(principal: string): CapsuleSummary[] {
    return this.registry.list({ principal }).map(toSummary);
  }

  /** The slash commands `principal` sees. */
  commands(principal: string): CommandSummary[] {
    return this.registry.commands({ principal }).map((c) => ({
      name: c.name,
      capsule: c.capsule,
      description: c.description,
    }));
  }

  /** One capsule's metadata in `principal`'s view. */
  metadata(name: string, principal: string): JsonValue | undefined {
    return this.registry.metadata(name, { principal });
  }

  /** The static context files and skills `principal` sees (with a workspace's, when named). */
  promptContext(principal: string, options: { workspaceId?: string } = {}): PromptContextSource {
    const view = {
      principal,
      ...(options.workspaceId !== undefined ? { workspaceId: options.workspaceId } : {}),
    };
    return {
      context: this.registry.listContext(view).map((c) => ({
        capsule: c.capsule,
        file: c.file,
        text: c.text,
      })),
      skills: this.registry.listSkills(view).map((s) => ({
        capsule: s.capsule,
        name: s.name,
        description: s.description,
        file: s.file,
        text: s.text,
      })),
    };
  }

  /** Unloads and loads every scope again (the daemon announces the result). */
  async reload(): Promise<ReloadReport> {
    return toReloadReport(await this.registry.reloadAll({ announce: false }));
  }

  /** True while a run-loop or cron capsule is loaded. */
  keepsAlive(): boolean {
    return this.registry.keepsAlive();
  }

  /** Unloads everything and stops the engine's workers. */
  async close(): Promise<void> {
    for (const l of this.#listeners.splice(0)) l.close();
    this.#connect.close();
    await this.registry.close();
    await this.services.close();
    await this.engine.close();
    await this.#logs.flush();
  }

  async #onConnect(msg: BusMessage): Promise<void> {
    // The daemon publishes it for each authenticated connection, as that client (`kind: client`);
    // no client may publish `client.v1.*` itself (CLIENT_PUBLISH_ALLOW), and a capsule is refused.
    if (msg.source.kind !== "kernel" && msg.source.kind !== "client") return;
    await this.registry.ensurePrincipal(msg.principal).then((r) => {
      if (r.loaded.length + r.failed.length + r.blocked.length > 0) {
        this.#deps.log.info("Principal capsules loaded", {
          principal: msg.principal,
          loaded: r.loaded.length,
          failed: r.failed.length,
        });
      }
    }, (err) =>
      this.#deps.log.error("Cannot load a principal's capsules", {
        principal: msg.principal,
        error: String((err as Error)?.message ?? err),
      }));
  }

  #onWorkspace(id: string, root: string): void {
    this.registry.ensureWorkspace({ id, root }).then((r) => {
      if (r.loaded.length + r.failed.length + r.blocked.length + r.untrusted.length > 0) {
        this.#deps.log.info("Workspace capsules loaded", {
          workspace: id,
          loaded: r.loaded.length,
          failed: r.failed.length,
          untrusted: r.untrusted.length,
        });
      }
    }, (err) =>
      this.#deps.log.error("Cannot load a workspace's capsules", {
        workspace: id,
        error: String((err as Error)?.message ?? err),
      }));
  }

  #onSessionEnded(msg: BusMessage): void {
    if (msg.source.kind !== "kernel" || msg.payload.kind !== "json") return;
    const v = msg.payload.value as { session?: unknown } | null;
    if (typeof v?.session === "string") this.services.closeSession(msg.principal, v.session);
  }
}

/** {@link WorkspaceTrustHost} over the trust store, the registry and the workspace directory. */
class RuntimeWorkspaceTrust implements WorkspaceTrustHost {
  readonly #store: StoreWorkspaceTrust;
  readonly #kernel: KernelParts;
  readonly #registry: CapsuleRegistry;
  readonly #workspaces: WorkspaceDirectory;

  constructor(
    store: StoreWorkspaceTrust,
    parts: { kernel: KernelParts; registry: CapsuleRegistry; workspaces: WorkspaceDirectory },
  ) {
    this.#store = store;
    this.#kernel = parts.kernel;
    this.#registry = parts.registry;
    this.#workspaces = parts.workspaces;
  }

  knows(workspaceId: string): boolean {
    return this.#workspaces.root(workspaceId) !== undefined;
  }

  async inspect(workspaceId: string, name: string): Promise<WorkspaceTrustView> {
    const found = (await this.#store.list(workspaceId)).find((r) => r.name === name);
    const decision: TrustDecisionWire | undefined = found === undefined ? undefined : {
      manifest_hash: found.manifestHash,
      wasm_hash: found.wasmHash,
      trusted_at: found.trustedAt,
      by: found.by,
    };
    const root = this.#workspaces.root(workspaceId);
    if (root === undefined) return decision === undefined ? {} : { decision };
    // What the registry's workspace pass would see: records of <root>/.astrid/capsules only.
    const d = await discoverCapsules(this.#kernel.home, {
      principal: DEFAULT_PRINCIPAL,
      workspace: root,
    });
    const record = [...d.capsules, ...d.shadowed].find((c) =>
      c.scope === "workspace" && c.name === name
    );
    if (record === undefined) return decision === undefined ? {} : { decision };
    const subject = trustSubject(workspaceId, record);
    const state = this.#registry.list({ principal: DEFAULT_PRINCIPAL, workspaceId }).find((c) =>
      c.scope === "workspace" && c.workspaceId === workspaceId && c.name === name
    )?.state;
    const installed: WorkspaceCapsuleWire = {
      workspace_id: workspaceId,
      name,
      version: record.manifest.package.version,
      manifest_hash: subject.manifestHash,
      wasm_hash: subject.wasmHash,
      trust: decision === undefined
        ? "untrusted"
        : decision.manifest_hash === subject.manifestHash &&
            decision.wasm_hash === subject.wasmHash
        ? "trusted"
        : "changed",
      ...(state === undefined ? {} : { state }),
    };
    return decision === undefined ? { installed } : { installed, decision };
  }

  async trust(
    capsule: WorkspaceCapsuleWire,
    options: { by?: string } = {},
  ): Promise<TrustDecisionWire> {
    const r = await this.#store.trust({
      workspaceId: capsule.workspace_id,
      name: capsule.name,
      manifestHash: capsule.manifest_hash,
      wasmHash: capsule.wasm_hash,
    }, options);
    return {
      manifest_hash: r.manifestHash,
      wasm_hash: r.wasmHash,
      trusted_at: r.trustedAt,
      by: r.by,
    };
  }

  untrust(workspaceId: string, name: string): Promise<boolean> {
    return this.#store.revoke(workspaceId, name);
  }

  async reloadWorkspace(workspaceId: string): Promise<ReloadReport> {
    const root = this.#workspaces.root(workspaceId);
    if (root === undefined) return { loaded: [], failed: [] };
    return toReloadReport(
      await this.#registry.loadWorkspace({ id: workspaceId, root }, { announce: false }),
    );
  }
}

function toReloadReport(r: LoadReport): ReloadReport {
  return {
    loaded: r.loaded,
    failed: [
      ...r.failed,
      ...r.blocked.map((b) => ({ name: b.name, error: `blocked: ${b.reason}` })),
      ...r.untrusted.map((u) => ({ name: u.name, error: `untrusted: ${u.reason}` })),
    ],
  };
}

function toSummary(c: CapsuleInfo): CapsuleSummary {
  return {
    name: c.name,
    version: c.version,
    ...(c.description !== undefined ? { description: c.description } : {}),
    scope: c.scope,
    engines: c.engines,
    state: c.state,
    ...(c.error !== undefined ? { error: c.error } : {}),
    key: c.key,
    ...(c.workspaceId !== undefined ? { workspace_id: c.workspaceId } : {}),
    ...(c.health !== undefined ? { health: c.health.status } : {}),
    ...(c.health?.lastError !== undefined && c.health.consecutiveFailures > 0
      ? { last_error: c.health.lastError }
      : {}),
    ...(c.runLoop !== undefined ? { run_loop: c.runLoop } : {}),
    ...(c.ready !== undefined ? { ready: c.ready } : {}),
  };
}
