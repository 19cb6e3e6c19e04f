/**
 * Builders of the {@link HostServices} a call receives, for the capsule registry (and the test
 * fixture): the principal's KV namespace, the capsule's bus handle, the session VFS with its
 * host roots, and {@link createHostServices} which puts them together. Each builder takes only
 * the kernel part it scopes.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "../kernel/storage/mod.ts";
 * import { scopedKv } from "./host_services.ts";
 *
 * const kv = scopedKv(new MemoryStore(), "alice", "notes");
 * await kv.set("a", new Uint8Array([1]));
 * if (kv.namespace !== "alice:capsule:notes" || (await kv.listKeys()).length !== 1) {
 *   throw new Error("unexpected");
 * }
 * ```
 *
 * @module
 */
import { join } from "node:path";
import type { AstridHome } from "../kernel/home/mod.ts";
import type { BusContext, EventBus } from "../kernel/events/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { capsuleNamespace, type Store } from "../kernel/storage/mod.ts";
import { type Vfs, VfsRouter } from "../kernel/vfs/mod.ts";
import type { HandleTable } from "./handle_table.ts";
import type {
  CapsuleBus,
  CapsuleConfigView,
  CapsuleLogs,
  HostAudit,
  HostSecurity,
  HostServices,
  ScopedKv,
  ServiceKey,
  SessionVfs,
} from "./host_function.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The capsule's KV namespace for `principal` over `store` (`{principal}:capsule:{name}`). */
export function scopedKv(store: Store, principal: string, capsule: string): ScopedKv {
  const ns = capsuleNamespace(principal, capsule);
  return {
    namespace: ns,
    get: (key) => store.get(ns, key),
    set: (key, value) => store.set(ns, key, value),
    delete: (key) => store.delete(ns, key),
    listKeys: (prefix) => store.listKeys(ns, prefix),
    clearPrefix: (prefix) => store.clearPrefix(ns, prefix),
  };
}

/**
 * The capsule's handle on `bus`: every operation carries the kernel-built context (the
 * invocation's principal, the capsule as source; `kind: "uplink"` for uplink capsules), so
 * the bus applies the capsule's ACL. Throws `INVALID_ARGUMENT` for a malformed principal.
 */
export function capsuleBus(
  bus: EventBus,
  scope: { principal: string; capsule: string; kind?: "capsule" | "uplink" },
): CapsuleBus {
  const ctx: BusContext = {
    principal: principalId(scope.principal),
    source: { kind: scope.kind ?? "capsule", name: scope.capsule },
  };
  return {
    ctx,
    publish: (topic, data, options = {}) => bus.publish(topic, data, { ...options, ctx }),
    request: (topic, data, options = {}) => bus.request(topic, data, { ...options, ctx }),
    subscribe: (pattern, options = {}) => bus.subscribe(pattern, { ...options, ctx }),
  };
}

/** Options of {@link openSessionVfs}. */
export interface OpenSessionVfsOptions {
  /** The acting principal. */
  principal: string;
  /** The session's workspace view (its `OverlayVfs`). */
  workspace: Vfs;
  /** The workspace's host directory (the overlay's lower root). */
  workspaceRoot: string;
  /** Let `global://` be written (default read-only). */
  globalWritable?: boolean;
}

/**
 * Opens the session VFS of a principal: `VfsRouter.forSession` plus the absolute canonical
 * host root of each scheme (what `fs.*` sensitive actions name).
 */
export async function openSessionVfs(
  home: AstridHome,
  options: OpenSessionVfsOptions,
): Promise<SessionVfs> {
  const router = await VfsRouter.forSession(home, {
    principal: options.principal,
    workspace: options.workspace,
    globalWritable: options.globalWritable,
  });
  const roots = {
    workspace: await Deno.realPath(options.workspaceRoot),
    home: await Deno.realPath(home.principalDir(options.principal)),
    global: await Deno.realPath(join(home.root, "global")),
  };
  return { router, roots: Object.freeze(roots) };
}

/** A config view with no values and no secrets. */
export const EMPTY_CONFIG: CapsuleConfigView = Object.freeze({
  get: () => Promise.resolve(undefined),
  hasSecret: () => Promise.resolve(false),
});

/** A log that drops every line. */
export const DISCARD_LOGS: CapsuleLogs = Object.freeze({ write: () => {} });

/** An entry of {@link HostServicesParts.extensions}: a typed key and its service. */
export type ServiceEntry = readonly [ServiceKey<unknown>, unknown];

/** Pairs `key` with `value`, type-checked, for {@link HostServicesParts.extensions}. */
export function provide<T>(key: ServiceKey<T>, value: T): ServiceEntry {
  return [key as ServiceKey<unknown>, value];
}

/** What {@link createHostServices} assembles. */
export interface HostServicesParts {
  /** Opens the principal's session VFS; called at most once per services object. */
  vfs: () => Promise<SessionVfs>;
  /** The capsule's KV namespace for the principal. */
  kv: ScopedKv;
  /** The capsule's bus handle. */
  bus: CapsuleBus;
  /** The security pipeline. */
  security: HostSecurity;
  /** The audit log. */
  audit: HostAudit;
  /** Handles of this (capsule, principal). */
  handles: HandleTable;
  /** The capsule's `[env]` (default: {@link EMPTY_CONFIG}). */
  config?: CapsuleConfigView;
  /** The capsule's log (default: {@link DISCARD_LOGS}). */
  logs?: CapsuleLogs;
  /** Services other subsystems define, made with {@link provide}. */
  extensions?: readonly ServiceEntry[];
}

/** Assembles {@link HostServices}; the VFS opens on first use and is shared afterwards. */
export function createHostServices(parts: HostServicesParts): HostServices {
  let vfs: Promise<SessionVfs> | undefined;
  const extensions = new Map<ServiceKey<unknown>, unknown>(parts.extensions ?? []);
  return {
    vfs: () => {
      vfs ??= parts.vfs();
      return vfs;
    },
    kv: parts.kv,
    bus: parts.bus,
    security: parts.security,
    audit: parts.audit,
    handles: parts.handles,
    config: parts.config ?? EMPTY_CONFIG,
    logs: parts.logs ?? DISCARD_LOGS,
    get<T>(key: ServiceKey<T>): T {
      if (!extensions.has(key as ServiceKey<unknown>)) {
        throw new HostCallError(
          HostStatus.UNAVAILABLE,
          `The ${key.name} service is not available in this kernel`,
        );
      }
      return extensions.get(key as ServiceKey<unknown>) as T;
    },
  };
}
