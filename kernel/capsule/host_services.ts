/**
 * `CapsuleHostServices`: builds, for each host call, the {@link HostCallContext} the host ABI's
 * dispatcher runs a function with — the calling capsule (from the invocation's capsule key,
 * never from the guest), the principal of the triggering message, its session and workspace,
 * and the {@link HostServices} scoped to them:
 *
 * | service | scoped to | built from |
 * | --- | --- | --- |
 * | `vfs()` | (principal, workspace, session) | `OverlayVfs` over the workspace root + `VfsRouter.forSession`, cached per session |
 * | `kv` | `{principal}:capsule:{name}` | the store |
 * | `bus` | the capsule's key as source, the principal | the bus (the capsule's ACL applies) |
 * | `security`, `audit` | — | the security pipeline, the audit log |
 * | `config` | the capsule's `[env]` for the principal | `home/{p}/.config/env/<capsule>.env.json`, over `home/default/…` for a system-scope capsule (`envFileLayers`) |
 * | `logs` | `home/{p}/.local/log/<capsule>.log` (ERROR also in the daemon log) | `CapsuleLogWriter` |
 * | `handles` | (capsule key, principal) | closed when the capsule unloads |
 * | `get(…)` | readiness (`signal_ready` → the registry), invocation origin, timers, the capsule's own secrets, and what `extensions` adds | |
 *
 * The session and workspace of an invocation are the `session` and `workspace_id` fields the
 * daemon stamps in the triggering message's payload (`docs/protocol.md`). An invocation with
 * no workspace (a run loop, cron, a message without one) acts in workspace
 * {@link NO_WORKSPACE} with an empty read-only `workspace://` (`home/{p}/.local/tmp/no-workspace`)
 * and, without a session, in session `capsule.<name>`; one whose workspace id the kernel does
 * not know the root of gets `UNAVAILABLE` from `vfs()`.
 *
 * @module
 */
import { join } from "node:path";
import type { Clock } from "../clock.ts";
import type { EventBus, Timers } from "../events/mod.ts";
import type { AstridHome } from "../home/mod.ts";
import type { Store } from "../storage/mod.ts";
import { HostVfs, overlaySessionDir, OverlayVfs } from "../vfs/mod.ts";
import type { HostCall } from "./engine/wasm/mod.ts";
import {
  CAPSULE_SECRETS,
  capsuleBus,
  type CapsuleLogWriter,
  createHostServices,
  DEFAULT_HOST_LIMITS,
  EnvFileConfig,
  envFileLayers,
  HandleTable,
  HOST_TIMERS,
  type HostAudit,
  type HostCallContext,
  HostCallError,
  type HostLimits,
  type HostSecurity,
  HostStatus,
  INVOCATION_ORIGIN,
  openSessionVfs,
  provide,
  READINESS_SERVICE,
  scopedKv,
  type ServiceEntry,
  type SessionVfs,
} from "../../host_abi/mod.ts";
import type { CapsuleInvocation } from "./capsule_dispatch.ts";
import type { CapsuleRegistry } from "./capsule_registry.ts";
import type { WorkspaceDirectory } from "./workspace_directory.ts";

/** What `extensions` receives to build a call's extra services. */
export interface ServiceScope {
  /** The principal of the call. */
  readonly principal: string;
  /** The capsule's name. */
  readonly capsule: string;
  /** The capsule's key (bus source name). */
  readonly key: string;
  /** The session, when the triggering message named one. */
  readonly session?: string;
  /** The workspace id, when the triggering message named one. */
  readonly workspaceId?: string;
}

/** Options of {@link CapsuleHostServices}. */
export interface CapsuleHostServicesOptions {
  /** The Astrid home. */
  readonly home: AstridHome;
  /** The store (KV namespaces). */
  readonly store: Store;
  /** The bus. */
  readonly bus: EventBus;
  /** The registry the calling capsules are loaded in. */
  readonly registry: CapsuleRegistry;
  /** The security pipeline (`SecurityInterceptor`). */
  readonly security: HostSecurity;
  /** The audit log. */
  readonly audit: HostAudit;
  /** Writes capsule logs. */
  readonly logs: CapsuleLogWriter;
  /** Time. */
  readonly clock: Clock;
  /** Timers blocking functions use (default: the real ones). */
  readonly timers?: Timers;
  /** Workspace roots by id (default: none known). */
  readonly workspaces?: WorkspaceDirectory;
  /** Limit overrides. */
  readonly limits?: Partial<HostLimits>;
  /** Extra services (identity store, elicitation, uplinks, processes…) per call. */
  readonly extensions?: (scope: ServiceScope) => readonly ServiceEntry[];
}

/** The workspace id of a call whose message named none (security actions need one). */
export const NO_WORKSPACE = "no-workspace";
/** The session id of a call whose message named none is this prefix and the capsule's name. */
export const NO_SESSION_PREFIX = "capsule.";

/** Builds each host call's context; see the module doc. */
export class CapsuleHostServices {
  readonly #o: CapsuleHostServicesOptions;
  readonly #limits: HostLimits;
  readonly #vfs = new Map<string, Promise<SessionVfs>>();
  readonly #overlays = new Map<string, Promise<OverlayVfs>>();
  readonly #handles = new Map<string, HandleTable>();

  /** Services over the kernel parts in `options`; handles close as capsules unload. */
  constructor(options: CapsuleHostServicesOptions) {
    this.#o = options;
    this.#limits = { ...DEFAULT_HOST_LIMITS, ...options.limits };
    options.registry.onUnload((key) => this.#closeHandles(key));
  }

  /** The limits every call receives. */
  get limits(): HostLimits {
    return this.#limits;
  }

  /**
   * The context of `call` (the dispatcher's `resolveContext`). Throws `UNAVAILABLE` when the
   * calling capsule is no longer loaded.
   */
  context(call: HostCall<CapsuleInvocation>): HostCallContext {
    const o = this.#o;
    const ctx = call.context;
    const loaded = o.registry.capsule(ctx.capsuleKey);
    if (loaded === undefined) {
      throw new HostCallError(
        HostStatus.UNAVAILABLE,
        `Capsule "${call.capsule}" is no longer loaded`,
      );
    }
    const name = loaded.name;
    const key = loaded.key;
    const principal = ctx.principal;
    const root = ctx.workspaceId === undefined ? undefined : o.workspaces?.root(ctx.workspaceId);
    const session = {
      id: ctx.session ?? `${NO_SESSION_PREFIX}${name}`,
      workspaceId: ctx.workspaceId ?? NO_WORKSPACE,
      workspaceRoot: ctx.workspaceId === undefined ? this.#emptyWorkspace(principal) : root ?? "",
    };
    const config = new EnvFileConfig(
      envFileLayers(o.home.root, {
        principal,
        capsule: name,
        operatorInstalled: loaded.scope.kind === "system",
      }),
      loaded.manifest.env,
    );
    const scope: ServiceScope = {
      principal,
      capsule: name,
      key,
      ...(ctx.session !== undefined ? { session: ctx.session } : {}),
      ...(ctx.workspaceId !== undefined ? { workspaceId: ctx.workspaceId } : {}),
    };
    const extensions: ServiceEntry[] = [
      provide(READINESS_SERVICE, { ready: () => void o.registry.markReady(key) }),
      provide(CAPSULE_SECRETS, config),
      ...(o.timers !== undefined ? [provide(HOST_TIMERS, o.timers)] : []),
      ...(ctx.topic !== undefined
        ? [provide(INVOCATION_ORIGIN, { source: ctx.source ?? "kernel:unknown", topic: ctx.topic })]
        : []),
      ...(o.extensions?.(scope) ?? []),
    ];
    return {
      principal,
      capsule: name,
      manifest: loaded.manifest,
      exportName: call.exportName,
      session,
      ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
      signal: call.signal,
      clock: o.clock,
      limits: this.#limits,
      services: createHostServices({
        vfs: () => this.#sessionVfs(principal, ctx.session, ctx.workspaceId, root),
        kv: scopedKv(o.store, principal, name),
        bus: capsuleBus(o.bus, {
          principal,
          capsule: key,
          kind: loaded.source.kind === "uplink" ? "uplink" : "capsule",
        }),
        security: o.security,
        audit: o.audit,
        handles: this.#table(key, principal),
        config,
        logs: o.logs.forCapsule(principal, name, ctx.requestId),
        extensions,
      }),
    };
  }

  /** Drops the cached VFS of (principal, session) and closes its overlays (the session ended). */
  closeSession(principal: string, session: string): void {
    const prefix = `${principal}\u0000${session}\u0000`;
    for (const k of [...this.#vfs.keys()]) if (k.startsWith(prefix)) this.#vfs.delete(k);
    for (const [k, o] of [...this.#overlays]) {
      if (!k.startsWith(prefix)) continue;
      this.#overlays.delete(k);
      o.then((v) => v.close(), () => {});
    }
  }

  /** Closes every handle table and overlay. */
  async close(): Promise<void> {
    const tables = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(tables.map((t) => t.closeAll().catch(() => {})));
    for (const o of this.#overlays.values()) o.then((v) => v.close(), () => {});
    this.#overlays.clear();
    this.#vfs.clear();
  }

  #emptyWorkspace(principal: string): string {
    return join(this.#o.home.principalDir(principal), ".local", "tmp", NO_WORKSPACE);
  }

  #table(key: string, principal: string): HandleTable {
    const k = `${key}\u0000${principal}`;
    let table = this.#handles.get(k);
    if (table === undefined) {
      table = new HandleTable({ maxPerKind: this.#limits.maxHandlesPerKind });
      this.#handles.set(k, table);
    }
    return table;
  }

  #closeHandles(key: string): void {
    const prefix = `${key}\u0000`;
    for (const [k, table] of [...this.#handles]) {
      if (!k.startsWith(prefix)) continue;
      this.#handles.delete(k);
      table.closeAll().catch(() => {});
    }
  }

  #sessionVfs(
    principal: string,
    session: string | undefined,
    workspaceId: string | undefined,
    root: string | undefined,
  ): Promise<SessionVfs> {
    if (workspaceId !== undefined && root === undefined) {
      return Promise.reject(
        new HostCallError(
          HostStatus.UNAVAILABLE,
          `Workspace "${workspaceId}" is not known to the kernel: its files are not available`,
        ),
      );
    }
    const k = `${principal}\u0000${session ?? ""}\u0000${workspaceId ?? ""}`;
    let v = this.#vfs.get(k);
    if (v === undefined) {
      v = this.#openVfs(principal, session, workspaceId, root);
      this.#vfs.set(k, v);
      v.catch(() => {
        if (this.#vfs.get(k) === v) this.#vfs.delete(k);
      });
    }
    return v;
  }

  async #openVfs(
    principal: string,
    session: string | undefined,
    workspaceId: string | undefined,
    root: string | undefined,
  ): Promise<SessionVfs> {
    const home = this.#o.home;
    if (workspaceId === undefined || root === undefined || session === undefined) {
      // No session workspace: an empty, read-only workspace:// (home:// and global:// work).
      const empty = this.#emptyWorkspace(principal);
      const workspace = await HostVfs.open(empty, {
        scheme: "workspace",
        readOnly: true,
        create: true,
      });
      return await openSessionVfs(home, { principal, workspace, workspaceRoot: empty });
    }
    const ok = `${principal}\u0000${session}\u0000${workspaceId}`;
    let overlay = this.#overlays.get(ok);
    if (overlay === undefined) {
      overlay = OverlayVfs.open(
        root,
        overlaySessionDir(home, { principal, workspaceId, session }),
        { clock: this.#o.clock },
      );
      this.#overlays.set(ok, overlay);
      overlay.catch(() => {
        if (this.#overlays.get(ok) === overlay) this.#overlays.delete(ok);
      });
    }
    return await openSessionVfs(home, { principal, workspace: await overlay, workspaceRoot: root });
  }
}
