/**
 * `CapsuleRegistry`: discovers installed capsules, orders them, loads them into their engines
 * and binds them to the bus, per scope (`capsule_scope.ts`); unloads, reloads, reports health,
 * and answers what the daemon and the prompt builder ask (capsules, commands, tools, static
 * content). `docs/capsule_runtime.md` describes the pipeline.
 *
 * A **load pass** over one scope:
 *
 * 1. discovery (`discoverCapsules`): broken records are reported as failed; workspace capsules
 *    the operator has not trusted ({@link WorkspaceTrust}) are reported as untrusted;
 * 2. plan (`toposortCapsules`, cycles blocked rather than thrown): blocked capsules are
 *    reported with the plan's reason; the system capsules already loaded count as providers of
 *    a principal or workspace pass (and a scope's own when one capsule is reloaded);
 * 3. uplinks first: verified, loaded, bound, their run loop started; each must call
 *    `signal_ready` within `readyTimeoutMs` or it is unloaded and marked failed;
 * 4. the others are verified (`readInstalledWasm`: pinned BLAKE3, re-hashed) and loaded into
 *    the engine concurrently (compiled once per hash; one pool per (name, hash) shared by every
 *    scope unless the module runs a loop), static content read; a capsule whose required import
 *    only failed capsules met is then blocked too;
 * 5. in plan order: bus ACLs from the manifest, then interceptors, tools, cron, run loops;
 * 6. `astrid.v1.capsules_loaded` is published (unless the caller announces itself).
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { type EventBus, type JsonValue, systemTimers, type Timers } from "../events/mod.ts";
import type { AstridHome } from "../home/mod.ts";
import { DEFAULT_PRINCIPAL, type PrincipalId, principalId } from "../identity/mod.ts";
import { BinaryStore } from "./binary_store.ts";
import {
  type CapsuleInvocation,
  CAPSULES_LOADED_TOPIC,
  type ToolReply,
} from "./capsule_dispatch.ts";
import {
  capsuleKey,
  type CapsuleScopeRef,
  scopeId,
  type ScopeKind,
  scopeVisibleTo,
  SYSTEM_SCOPE,
} from "./capsule_scope.ts";
import { discoverCapsules, type DiscoveredCapsule, readInstalledWasm } from "./discovery.ts";
import {
  hasStaticContent,
  type StaticCommand,
  type StaticContextFile,
  StaticEngine,
  type StaticSkill,
} from "./engine/static/mod.ts";
import type { LoadOptions, WasmEngine } from "./engine/wasm/mod.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import { LoadedCapsule, type RuntimeLog } from "./loaded_capsule.ts";
import { type CapsuleManifest, isUplinkCapsule } from "./manifest.ts";
import { manifestAcl } from "./manifest_acl.ts";
import { toposortCapsules } from "./toposort.ts";
import { type WasmLease, WasmShares } from "./wasm_shares.ts";
import {
  type CapsuleInfo,
  capsuleInfo,
  capsuleMetadata,
  type CapsuleState,
  type CommandInfo,
  type ToolInfo,
} from "./capsule_info.ts";
import { NO_WORKSPACE_TRUST, trustSubject, type WorkspaceTrust } from "./workspace_trust.ts";

/** What a load pass (or reload) did. */
export interface LoadReport {
  /** The scopes it covered (`system`, `principal:alice`, …). */
  readonly scopes: readonly string[];
  /** Keys loaded, in load order. */
  readonly loaded: readonly string[];
  /** Capsules that failed (broken record, hash, engine, binding, not ready), by key. */
  readonly failed: readonly { readonly name: string; readonly error: string }[];
  /** Capsules the plan blocked (unmet import, cycle), by key. */
  readonly blocked: readonly { readonly name: string; readonly reason: string }[];
  /** Workspace capsules not loaded because the operator has not trusted them, by key. */
  readonly untrusted: readonly { readonly name: string; readonly reason: string }[];
  /** How long it took, ms. */
  readonly ms: number;
}

/** Which capsules a listing is for. */
export interface ViewOptions {
  /** The principal asking (default `default`). */
  readonly principal?: string;
  /** Include the workspace capsules of this workspace (default none). */
  readonly workspaceId?: string;
}

/** Options of a load pass. */
export interface PassOptions {
  /** Publish `astrid.v1.capsules_loaded` afterwards (default true). */
  readonly announce?: boolean;
}

/** Options of {@link CapsuleRegistry}. */
export interface CapsuleRegistryOptions {
  /** The Astrid home (records, `bin/`). */
  readonly home: AstridHome;
  /** The bus capsules are bound to. */
  readonly bus: EventBus;
  /** The WebAssembly engine; without one, capsules with `[wasm]` fail to load. */
  readonly engine?: WasmEngine<CapsuleInvocation>;
  /** The static engine (default: a new one). */
  readonly staticEngine?: StaticEngine;
  /** Time (default the system clock). */
  readonly clock?: Clock;
  /** Ready timeouts, restart backoff, cron (default the real timers). */
  readonly timers?: Timers;
  /** Where events go (default: warnings and errors to stderr). */
  readonly log?: RuntimeLog;
  /** Which workspace capsules may load (default: none). */
  readonly workspaceTrust?: WorkspaceTrust;
  /** How long an uplink has to signal ready, ms (default 10,000). */
  readonly readyTimeoutMs?: number;
  /** Consecutive failures that make a capsule unhealthy (default 5). */
  readonly unhealthyAfter?: number;
  /** Concurrent calls per tool (default 64). */
  readonly maxInFlight?: number;
  /** Time a `[subscribe]` handler may take, ms (default: the engine's invocation timeout). */
  readonly handlerTimeoutMs?: number;
  /** Run-loop restarts before giving up (default 5). */
  readonly maxRestarts?: number;
  /** First run-loop restart delay, ms, doubled each time (default 1,000). */
  readonly restartBackoffMs?: number;
  /** Capsules verified and loaded into the engine at once (default 4). */
  readonly loadConcurrency?: number;
  /** Per-capsule engine options (pool sizes, timeout), e.g. from config. */
  readonly engineOptions?: (manifest: CapsuleManifest) => LoadOptions | undefined;
}

interface Entry {
  readonly key: string;
  readonly name: string;
  readonly scope: CapsuleScopeRef;
  readonly record?: DiscoveredCapsule;
  state: CapsuleState;
  error?: string;
  loaded?: LoadedCapsule;
  lease?: WasmLease;
}

interface ScopeState {
  readonly scope: CapsuleScopeRef;
  /** Keys in load order (then the ones that did not load). */
  keys: string[];
}

const stderrLog: RuntimeLog = {
  info: () => {},
  warn: (message, data) => console.warn(message, data ?? ""),
  error: (message, data) => console.error(message, data ?? ""),
};

/** The capsule runtime's registry; see the module doc. */
export class CapsuleRegistry {
  readonly #home: AstridHome;
  readonly #bus: EventBus;
  readonly #engine: WasmEngine<CapsuleInvocation> | undefined;
  readonly #static: StaticEngine;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #log: RuntimeLog;
  readonly #trust: WorkspaceTrust;
  readonly #binaries: BinaryStore;
  readonly #opts: Required<
    Pick<
      CapsuleRegistryOptions,
      | "readyTimeoutMs"
      | "unhealthyAfter"
      | "maxInFlight"
      | "handlerTimeoutMs"
      | "maxRestarts"
      | "restartBackoffMs"
      | "loadConcurrency"
    >
  >;
  readonly #engineOptions: (manifest: CapsuleManifest) => LoadOptions | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #scopes = new Map<string, ScopeState>();
  /** name → principals whose own (principal-scope) capsule of that name is loaded. */
  readonly #shadows = new Map<string, Set<string>>();
  readonly #shares: WasmShares | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #unloadListeners: ((key: string) => void)[] = [];

  /** A registry over `options.home` and `options.bus`; nothing loads until {@link load}. */
  constructor(options: CapsuleRegistryOptions) {
    this.#home = options.home;
    this.#bus = options.bus;
    this.#engine = options.engine;
    this.#shares = options.engine === undefined ? undefined : new WasmShares(options.engine);
    this.#static = options.staticEngine ?? new StaticEngine();
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.log ?? stderrLog;
    this.#trust = options.workspaceTrust ?? NO_WORKSPACE_TRUST;
    this.#binaries = new BinaryStore(options.home.bin);
    this.#engineOptions = options.engineOptions ?? (() => undefined);
    this.#opts = {
      readyTimeoutMs: options.readyTimeoutMs ?? 10_000,
      unhealthyAfter: options.unhealthyAfter ?? 5,
      maxInFlight: options.maxInFlight ?? 64,
      handlerTimeoutMs: options.handlerTimeoutMs ??
        options.engine?.limits.invokeTimeoutMs ?? 300_000,
      maxRestarts: options.maxRestarts ?? 5,
      restartBackoffMs: options.restartBackoffMs ?? 1_000,
      loadConcurrency: Math.max(1, options.loadConcurrency ?? 4),
    };
  }

  /** The static engine serving context files, skills and file commands. */
  get staticEngine(): StaticEngine {
    return this.#static;
  }

  /** Loads the system scope: the operator's capsules (`home/default/.local/capsules`). */
  load(options: PassOptions = {}): Promise<LoadReport> {
    return this.#serial(() => this.#pass([SYSTEM_SCOPE], options));
  }

  /**
   * Loads principal `principal`'s own capsules (`home/{p}/.local/capsules`), once: later calls
   * resolve at once with an empty report. For `default` this is the system scope.
   */
  ensurePrincipal(principal: string, options: PassOptions = {}): Promise<LoadReport> {
    const scope = principalScope(principal);
    return this.#serial(() =>
      this.#scopes.has(scopeId(scope))
        ? Promise.resolve(emptyReport())
        : this.#pass([scope], options)
    );
  }

  /**
   * Loads the trusted capsules of the workspace `workspace.id` at `workspace.root`
   * (`<root>/.astrid/capsules`), replacing an earlier pass of that scope; they serve the
   * messages stamped with that workspace id.
   */
  loadWorkspace(
    workspace: { id: string; root: string },
    options: PassOptions = {},
  ): Promise<LoadReport> {
    return this.#serial(() => this.#pass([workspaceScope(workspace)], options));
  }

  /** {@link loadWorkspace} once: later calls for the same id resolve at once, empty. */
  ensureWorkspace(
    workspace: { id: string; root: string },
    options: PassOptions = {},
  ): Promise<LoadReport> {
    const scope = workspaceScope(workspace);
    return this.#serial(() =>
      this.#scopes.has(scopeId(scope))
        ? Promise.resolve(emptyReport())
        : this.#pass([scope], options)
    );
  }

  /** Unloads every scope and loads each again (the system scope first). */
  reloadAll(options: PassOptions = {}): Promise<LoadReport> {
    return this.#serial(async () => {
      const scopes = [...this.#scopes.values()].map((s) => s.scope);
      if (!scopes.some((s) => s.kind === "system")) scopes.unshift(SYSTEM_SCOPE);
      scopes.sort((a, b) => RANK[a.kind] - RANK[b.kind]);
      for (const s of [...scopes].reverse()) this.#unloadScope(scopeId(s));
      return await this.#pass(scopes, options);
    });
  }

  /**
   * Unloads capsule `name` of `principal`'s view (its own, else the system one) and loads it
   * again from its install record (also one unloaded earlier); throws `CAPSULE_NOT_FOUND` when
   * no such capsule is installed.
   */
  reload(name: string, options: ViewOptions & PassOptions = {}): Promise<LoadReport> {
    return this.#serial(async () => {
      const entry = this.#resolve(name, options);
      let scope = principalScope(options.principal ?? DEFAULT_PRINCIPAL);
      if (entry !== undefined) {
        scope = entry.scope;
        this.#unloadEntry(entry);
        this.#entries.delete(entry.key);
        const state = this.#scopes.get(scopeId(scope));
        if (state !== undefined) state.keys = state.keys.filter((k) => k !== entry.key);
      }
      const bare = entry?.name ?? name;
      const report = await this.#pass([scope], { ...options, only: bare });
      const key = capsuleKey(bare, scope);
      if (!this.#entries.has(key)) throw notFound(name);
      return report;
    });
  }

  /** Unloads capsule `name` of `principal`'s view; false when it was not loaded. */
  unload(name: string, options: ViewOptions = {}): Promise<boolean> {
    return this.#serial(() => {
      const entry = this.#resolve(name, options);
      if (entry === undefined) return Promise.resolve(false);
      this.#unloadEntry(entry);
      this.#entries.delete(entry.key);
      const state = this.#scopes.get(scopeId(entry.scope));
      if (state !== undefined) state.keys = state.keys.filter((k) => k !== entry.key);
      return Promise.resolve(true);
    });
  }

  /**
   * Unloads everything (reverse load order) at once — a load pass in flight is cut short (its
   * uplinks stop waiting, nothing more is bound) — and resolves once that pass has ended. The
   * engine is the caller's to close.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#unloadAll();
    this.#closing = this.#queue.then(() => this.#unloadAll());
    return this.#closing;
  }

  #unloadAll(): void {
    const ids = [...this.#scopes.values()]
      .sort((a, b) => RANK[b.scope.kind] - RANK[a.scope.kind])
      .map((s) => scopeId(s.scope));
    for (const id of ids) this.#unloadScope(id);
  }

  /** Calls `listener` with the key of every capsule unloaded (host services close its handles). */
  onUnload(listener: (key: string) => void): void {
    this.#unloadListeners.push(listener);
  }

  /** The loaded capsule with key `key` (host calls resolve their capsule through it). */
  capsule(key: string): LoadedCapsule | undefined {
    return this.#entries.get(key)?.loaded;
  }

  /** Marks the capsule `key` ready (its guest called `signal_ready`); false when unknown. */
  markReady(key: string): boolean {
    const loaded = this.#entries.get(key)?.loaded;
    if (loaded === undefined) return false;
    loaded.markReady();
    return true;
  }

  /** The capsules `options.principal` sees, in scope then load order. */
  list(options: ViewOptions = {}): CapsuleInfo[] {
    return this.#visible(options).map((e) => capsuleInfo(e));
  }

  /** Every known capsule of every scope. */
  listAll(): CapsuleInfo[] {
    return this.#ordered().map((e) => capsuleInfo(e));
  }

  /** Slash commands of the loaded capsules `options.principal` sees. */
  commands(options: ViewOptions = {}): CommandInfo[] {
    return this.#serving(options).flatMap((e) =>
      e.record!.manifest.command.map((c) => ({
        name: c.name,
        capsule: e.name,
        description: c.description,
        kind: c.handler !== undefined ? "handler" as const : "file" as const,
      }))
    );
  }

  /** Tools of the loaded capsules `options.principal` sees (what describe would answer). */
  tools(options: ViewOptions = {}): ToolInfo[] {
    return this.#serving(options).flatMap((e) =>
      e.record!.manifest.tool.map((t) => ({
        name: t.name,
        description: t.description,
        input_schema: t.input_schema,
        capsule: e.name,
      }))
    );
  }

  /** Context files of the loaded capsules `options.principal` sees. */
  listContext(options: ViewOptions = {}): StaticContextFile[] {
    return this.#static.listContext(this.#staticFilter(options));
  }

  /** Skills of the loaded capsules `options.principal` sees. */
  listSkills(options: ViewOptions = {}): StaticSkill[] {
    return this.#static.listSkills(this.#staticFilter(options));
  }

  /** File-backed commands of the loaded capsules `options.principal` sees. */
  listCommands(options: ViewOptions = {}): StaticCommand[] {
    return this.#static.listCommands(this.#staticFilter(options));
  }

  /**
   * Runs the handler-backed `[[command]]` `command` for `principal` (the capsule it resolves
   * to in the principal's view); throws `CAPSULE_NOT_FOUND` when no loaded capsule has it.
   */
  async runCommand(
    command: string,
    args: JsonValue,
    context: { principal: string; session?: string; workspaceId?: string },
  ): Promise<ToolReply> {
    const entry = this.#serving(context).find((e) =>
      e.record!.manifest.command.some((c) => c.name === command && c.handler !== undefined)
    );
    if (entry?.loaded === undefined) {
      throw new CapsuleError(
        CapsuleCode.CAPSULE_NOT_FOUND,
        `No loaded capsule answers the command "/${command}"`,
        { data: { name: command } },
      );
    }
    return await entry.loaded.runCommand(command, args, context);
  }

  /** The metadata of capsule `name` in `options.principal`'s view, or undefined. */
  metadata(name: string, options: ViewOptions = {}): JsonValue | undefined {
    const e = this.#resolve(name, options);
    return e === undefined ? undefined : capsuleMetadata(e);
  }

  /** True while a loaded capsule runs a loop or has cron jobs (keeps an idle daemon up). */
  keepsAlive(): boolean {
    for (const e of this.#entries.values()) if (e.loaded?.keepsAlive) return true;
    return false;
  }

  /** Loaded capsules that are unhealthy. */
  unhealthy(): CapsuleInfo[] {
    return this.listAll().filter((c) => c.health?.status === "unhealthy");
  }

  // ---- load passes -------------------------------------------------------------------------

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw closedError();
      return fn();
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #pass(
    scopes: readonly CapsuleScopeRef[],
    options: PassOptions & { only?: string },
  ): Promise<LoadReport> {
    const t0 = performance.now();
    const loaded: string[] = [];
    const failed: { name: string; error: string }[] = [];
    const blocked: { name: string; reason: string }[] = [];
    const untrusted: { name: string; reason: string }[] = [];
    for (const scope of scopes) {
      const r = await this.#loadScope(scope, options.only);
      loaded.push(...r.loaded);
      failed.push(...r.failed);
      blocked.push(...r.blocked);
      untrusted.push(...r.untrusted);
    }
    const report: LoadReport = {
      scopes: scopes.map(scopeId),
      loaded,
      failed,
      blocked,
      untrusted,
      ms: Math.round((performance.now() - t0) * 10) / 10,
    };
    this.#log.info("Capsules loaded", {
      scopes: report.scopes,
      loaded: loaded.length,
      failed: failed.length,
      blocked: blocked.length,
      untrusted: untrusted.length,
      ms: report.ms,
    });
    if (options.announce !== false) await this.#announce(scopes, report);
    return report;
  }

  async #announce(scopes: readonly CapsuleScopeRef[], report: LoadReport): Promise<void> {
    const principal = scopes[0]?.principal ?? DEFAULT_PRINCIPAL;
    try {
      await this.#bus.publish(CAPSULES_LOADED_TOPIC, {
        scopes: [...report.scopes],
        capsules: report.loaded.map((k) => this.#entries.get(k)?.name ?? k),
        failed: report.failed.map((f) => ({ ...f })),
        blocked: report.blocked.map((b) => ({ ...b })),
      }, { ctx: { principal, source: { kind: "kernel", name: "capsule_registry" } } });
    } catch (err) {
      this.#log.error("Cannot publish astrid.v1.capsules_loaded", { error: errorText(err) });
    }
  }

  async #loadScope(
    scope: CapsuleScopeRef,
    only: string | undefined,
  ): Promise<Omit<LoadReport, "scopes" | "ms">> {
    const id = scopeId(scope);
    if (only === undefined) this.#unloadScope(id);
    const state = this.#scopes.get(id) ?? { scope, keys: [] };
    this.#scopes.set(id, state);
    const report = {
      loaded: [] as string[],
      failed: [] as { name: string; error: string }[],
      blocked: [] as { name: string; reason: string }[],
      untrusted: [] as { name: string; reason: string }[],
    };
    const add = (entry: Entry) => {
      this.#entries.set(entry.key, entry);
      if (!state.keys.includes(entry.key)) state.keys.push(entry.key);
    };

    // 1. discovery
    const found = await discoverCapsules(this.#home, {
      principal: scope.principal,
      ...(scope.kind === "workspace" ? { workspace: scope.workspaceRoot } : {}),
    });
    for (const p of found.problems) {
      if (p.scope !== (scope.kind === "workspace" ? "workspace" : "user")) continue;
      const name = p.dir.slice(p.dir.lastIndexOf("/") + 1);
      if (only !== undefined && name !== only) continue;
      const key = capsuleKey(name, scope);
      add({ key, name, scope, state: "failed", error: p.error.message });
      report.failed.push({ name: key, error: p.error.message });
      this.#log.error("Capsule record is broken", { capsule: key, error: p.error.message });
    }
    const outer = this.#outerNames(scope);
    let candidates = found.capsules.filter((c) =>
      (scope.kind === "workspace" ? c.scope === "workspace" : c.scope === "user") &&
      (only === undefined || c.name === only)
    );
    if (scope.kind === "workspace") {
      for (const c of candidates.filter((c) => outer.has(c.name))) {
        this.#log.warn("Workspace capsule shadowed by an installed one", {
          capsule: c.name,
          workspace: scope.workspaceId,
        });
      }
      candidates = candidates.filter((c) => !outer.has(c.name));
      const trusted: DiscoveredCapsule[] = [];
      for (const c of candidates) {
        if (await this.#trust.isTrusted(trustSubject(scope.workspaceId!, c))) {
          trusted.push(c);
          continue;
        }
        const key = capsuleKey(c.name, scope);
        const reason =
          `workspace capsule "${c.name}" is not trusted by the operator (or changed since it was trusted): trust it to load it`;
        add({ key, name: c.name, scope, record: c, state: "untrusted", error: reason });
        report.untrusted.push({ name: key, reason });
      }
      candidates = trusted;
    }

    // 2. plan, with what the outer scopes already provide
    const externals = this.#providerManifests(
      scope,
      new Set(candidates.map((c) => c.name)),
      only !== undefined,
    );
    const byName = new Map(candidates.map((c) => [c.name, c]));
    const plan = (exclude: ReadonlySet<string>) => {
      const mine = candidates.filter((c) => !exclude.has(c.name)).map((c) => c.manifest);
      const p = toposortCapsules([...mine, ...externals], { blockCycles: true });
      return {
        order: p.order.filter((n) => byName.has(n) && !exclude.has(n)),
        blocked: p.blocked.filter((b) => byName.has(b.name) && !exclude.has(b.name)),
      };
    };
    const failedNames = new Set<string>();
    const blockedNames = new Set<string>();
    const block = (name: string, reason: string) => {
      blockedNames.add(name);
      const key = capsuleKey(name, scope);
      const existing = this.#entries.get(key);
      if (existing !== undefined) {
        existing.state = "blocked";
        existing.error = reason;
      } else {
        add({ key, name, scope, record: byName.get(name)!, state: "blocked", error: reason });
      }
      report.blocked.push({ name: key, reason });
      this.#log.warn("Capsule blocked", { capsule: key, reason });
    };
    let current = plan(new Set());
    for (const b of current.blocked) block(b.name, b.reason);
    const fail = (entry: Entry, err: unknown) => {
      failedNames.add(entry.name);
      entry.state = "failed";
      entry.error = errorText(err);
      entry.loaded = undefined;
      report.failed.push({ name: entry.key, error: entry.error });
      this.#log.error("Capsule failed to load", { capsule: entry.key, error: entry.error });
    };
    const replan = () => {
      const p = plan(new Set([...failedNames]));
      for (const b of p.blocked) if (!blockedNames.has(b.name)) block(b.name, b.reason);
      current = p;
    };

    // 3. uplinks first: each must signal ready
    const uplinks = current.order.filter((n) => isUplinkCapsule(byName.get(n)!.manifest));
    const up: Entry[] = [];
    for (const name of uplinks) {
      const entry: Entry = {
        key: capsuleKey(name, scope),
        name,
        scope,
        record: byName.get(name)!,
        state: "loaded",
      };
      add(entry);
      try {
        await this.#prepare(entry);
        this.#bind(entry);
        up.push(entry);
      } catch (err) {
        this.#unloadEntry(entry);
        fail(entry, err);
      }
    }
    await Promise.all(up.map(async (entry) => {
      try {
        await entry.loaded!.whenReady(this.#opts.readyTimeoutMs);
      } catch (err) {
        this.#unloadEntry(entry);
        fail(entry, err);
      }
    }));
    if (failedNames.size > 0) replan();

    // 4. the rest: verify and load concurrently, then drop what lost its providers
    const rest = current.order.filter((n) => !uplinks.includes(n) && !blockedNames.has(n));
    const entries = rest.map((name): Entry => {
      const entry: Entry = {
        key: capsuleKey(name, scope),
        name,
        scope,
        record: byName.get(name)!,
        state: "loaded",
      };
      add(entry);
      return entry;
    });
    await pool(entries, this.#opts.loadConcurrency, async (entry) => {
      try {
        await this.#prepare(entry);
      } catch (err) {
        this.#release(entry);
        fail(entry, err);
      }
    });
    for (let before = -1; failedNames.size + blockedNames.size !== before;) {
      before = failedNames.size + blockedNames.size;
      replan();
    }

    // 5. bind in plan order
    for (const entry of entries) {
      if (failedNames.has(entry.name)) continue;
      if (blockedNames.has(entry.name)) {
        this.#release(entry);
        continue;
      }
      try {
        this.#bind(entry);
      } catch (err) {
        this.#unloadEntry(entry);
        fail(entry, err);
      }
    }
    for (const entry of [...up, ...entries]) {
      if (entry.state === "loaded") report.loaded.push(entry.key);
    }
    // Keep the scope's keys in load order, the ones that did not load after.
    const order = new Map(report.loaded.map((k, i) => [k, i]));
    state.keys.sort((a, b) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity));
    if (scope.kind === "principal") this.#refreshShadows();
    return report;
  }

  /** Verifies and loads the engines of `entry` (no bus binding yet). */
  async #prepare(entry: Entry): Promise<void> {
    const record = entry.record!;
    const m = record.manifest;
    if (m.wasm !== undefined) {
      if (this.#engine === undefined) {
        throw new CapsuleError(
          CapsuleCode.CAPSULE_LOAD_FAILED,
          `Cannot load capsule "${entry.name}": no WebAssembly engine is configured`,
          { data: { name: entry.name, reason: "no engine" } },
        );
      }
      const bytes = await readInstalledWasm(this.#binaries, record);
      entry.lease = await this.#shares!.acquire(
        entry.name,
        record.meta.wasm_hash!,
        bytes,
        this.#engineOptions(m) ?? {},
      );
      if (this.#closed) throw closedError();
    }
    if (hasStaticContent(m)) {
      await this.#static.load({ key: entry.key, dir: record.dir, manifest: m });
    }
    if (m.mcp_server.length > 0) {
      this.#log.warn(
        "The mcp engine is not available yet: [[mcp_server]] entries are not started",
        {
          capsule: entry.key,
          servers: m.mcp_server.map((s) => s.name),
        },
      );
    }
  }

  /** Sets the ACL and binds `entry` (its engines prepared); starts its run loop. */
  #bind(entry: Entry): void {
    if (this.#closed) throw closedError();
    const record = entry.record!;
    this.#bus.setAcl(entry.key, manifestAcl(record.manifest));
    const loaded = new LoadedCapsule(
      { key: entry.key, scope: entry.scope, record, wasm: entry.lease?.capsule },
      {
        bus: this.#bus,
        clock: this.#clock,
        timers: this.#timers,
        log: this.#log,
        shadowed: (name, principal) => this.#shadows.get(name)?.has(principal) ?? false,
        unhealthyAfter: this.#opts.unhealthyAfter,
        maxInFlight: this.#opts.maxInFlight,
        handlerTimeoutMs: this.#opts.handlerTimeoutMs,
        maxRestarts: this.#opts.maxRestarts,
        restartBackoffMs: this.#opts.restartBackoffMs,
        restartWindowMs: 60_000,
      },
    );
    entry.loaded = loaded;
    loaded.bind();
    loaded.startRunLoop();
    entry.state = "loaded";
    entry.error = undefined;
  }

  #release(entry: Entry): void {
    entry.lease?.release();
    entry.lease = undefined;
    this.#static.unload(entry.key);
  }

  #unloadEntry(entry: Entry): void {
    if (entry.loaded !== undefined) {
      entry.loaded.stop();
      entry.loaded = undefined;
      for (const listener of this.#unloadListeners) {
        try {
          listener(entry.key);
        } catch (err) {
          this.#log.error("A capsule unload listener failed", {
            capsule: entry.key,
            error: errorText(err),
          });
        }
      }
    }
    if (this.#bus.acl(entry.key) !== undefined) this.#bus.removeAcl(entry.key);
    this.#release(entry);
  }

  #unloadScope(id: string): void {
    const state = this.#scopes.get(id);
    if (state === undefined) return;
    for (const key of [...state.keys].reverse()) {
      const entry = this.#entries.get(key);
      if (entry === undefined) continue;
      this.#unloadEntry(entry);
      this.#entries.delete(key);
    }
    this.#scopes.delete(id);
    if (state.scope.kind === "principal") this.#refreshShadows();
  }

  #refreshShadows(): void {
    this.#shadows.clear();
    for (const e of this.#entries.values()) {
      if (e.scope.kind !== "principal" || e.state !== "loaded") continue;
      let set = this.#shadows.get(e.name);
      if (set === undefined) this.#shadows.set(e.name, set = new Set());
      set.add(e.scope.principal);
    }
  }

  /** Names loaded in the scopes `scope` builds on (the system scope). */
  #outerNames(scope: CapsuleScopeRef): Set<string> {
    return new Set(this.#outerEntries(scope).map((e) => e.name));
  }

  /**
   * Manifests of the loaded capsules that may provide for a pass over `scope`: the outer
   * scopes', and with `sameScope` (reloading one capsule) the scope's own, minus `exclude`.
   */
  #providerManifests(
    scope: CapsuleScopeRef,
    exclude: ReadonlySet<string>,
    sameScope: boolean,
  ): CapsuleManifest[] {
    const entries = this.#outerEntries(scope);
    if (sameScope) entries.push(...this.#loadedIn(scopeId(scope)));
    const seen = new Set<string>();
    const out: CapsuleManifest[] = [];
    // Innermost first, so a principal's own capsule hides the system one of the same name.
    for (const e of entries.reverse()) {
      if (exclude.has(e.name) || seen.has(e.name)) continue;
      seen.add(e.name);
      out.push(e.record!.manifest);
    }
    return out;
  }

  #outerEntries(scope: CapsuleScopeRef): Entry[] {
    return scope.kind === "system" ? [] : this.#loadedIn("system");
  }

  #loadedIn(id: string): Entry[] {
    const out: Entry[] = [];
    for (const key of this.#scopes.get(id)?.keys ?? []) {
      const e = this.#entries.get(key);
      if (e?.state === "loaded" && e.record !== undefined) out.push(e);
    }
    return out;
  }

  // ---- views -------------------------------------------------------------------------------

  #ordered(): Entry[] {
    return [...this.#scopes.values()]
      .sort((a, b) => RANK[a.scope.kind] - RANK[b.scope.kind])
      .flatMap((s) => s.keys.map((k) => this.#entries.get(k)).filter((e) => e !== undefined));
  }

  /** Every entry `options.principal` sees (all states). */
  #visible(options: ViewOptions): Entry[] {
    const principal = options.principal ?? DEFAULT_PRINCIPAL;
    return this.#ordered().filter((e) =>
      scopeVisibleTo(e.scope, principal) &&
      (e.scope.kind !== "workspace" || e.scope.workspaceId === options.workspaceId ||
        options.workspaceId === undefined)
    );
  }

  /** Loaded entries that serve `options.principal` (shadowed system/workspace ones left out). */
  #serving(options: ViewOptions): Entry[] {
    const principal = options.principal ?? DEFAULT_PRINCIPAL;
    return this.#visible(options).filter((e) =>
      e.state === "loaded" && e.record !== undefined &&
      !(e.scope.kind !== "principal" && (this.#shadows.get(e.name)?.has(principal) ?? false)) &&
      (e.scope.kind !== "workspace" || e.scope.workspaceId === options.workspaceId)
    );
  }

  #staticFilter(options: ViewOptions): (key: string) => boolean {
    const keys = new Set(this.#serving(options).map((e) => e.key));
    return (key) => keys.has(key);
  }

  /** The capsule `name` means for `options.principal`: its own, else a workspace one, else the system one. */
  #resolve(name: string, options: ViewOptions): Entry | undefined {
    const principal = options.principal ?? DEFAULT_PRINCIPAL;
    const matches = this.#visible(options).filter((e) => e.name === name || e.key === name);
    const rank = (e: Entry) =>
      e.scope.kind === "principal" && e.scope.principal === principal
        ? 0
        : e.scope.kind === "workspace"
        ? 1
        : 2;
    return matches.sort((a, b) => rank(a) - rank(b))[0];
  }
}

const RANK: Record<ScopeKind, number> = { system: 0, principal: 1, workspace: 2 };

function workspaceScope(workspace: { id: string; root: string }): CapsuleScopeRef {
  return {
    kind: "workspace",
    principal: DEFAULT_PRINCIPAL,
    workspaceId: workspace.id,
    workspaceRoot: workspace.root,
  };
}

function principalScope(principal: string): CapsuleScopeRef {
  const p: PrincipalId = principalId(principal);
  return p === DEFAULT_PRINCIPAL ? SYSTEM_SCOPE : { kind: "principal", principal: p };
}

function emptyReport(): LoadReport {
  return { scopes: [], loaded: [], failed: [], blocked: [], untrusted: [], ms: 0 };
}

async function pool<T>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

function notFound(name: string): CapsuleError {
  return new CapsuleError(
    CapsuleCode.CAPSULE_NOT_FOUND,
    `No capsule "${name}" is known to the registry: install it, or check the name with astrid capsule list`,
    { data: { name } },
  );
}

function closedError(): CapsuleError {
  return new CapsuleError(CapsuleCode.CAPSULE_NOT_FOUND, "The capsule registry is closed", {
    data: {},
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
