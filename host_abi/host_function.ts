/**
 * The row contract of the host ABI: what one host function is ({@link HostFunction}), what a
 * call of it receives ({@link HostCallContext}) and the narrow kernel services it may use
 * ({@link HostServices}).
 *
 * A call goes through three steps, always in this order, driven by the dispatcher
 * (`dispatcher.ts`) and never by the function itself:
 *
 * 1. `parse(req, call)` decodes the request (`RequestReader`) and canonicalizes its targets
 *    (a VFS path routed to its canonical `scheme://path` URI, a host lowercased). It has no
 *    effect and checks cheap limits (sizes, counts) first.
 * 2. `gate(args, call)` names the manifest capabilities the call needs
 *    ({@link GateRequirement}); the dispatcher checks them against the capsule's
 *    `[capabilities]` with the `ManifestSecurityGate` and audits a denial. A function cannot
 *    skip this step: the dispatcher owns it.
 * 3. `run(args, call)` does the work and returns the OK body. Sensitive functions call
 *    `call.services.security.authorize(...)` with the canonical resource themselves (see
 *    {@link authorizeOrThrow}); failures are thrown as `HostCallError(status, message)`.
 *
 * A function takes only what it needs from the context: the principal's KV namespace, its
 * session VFS, the capsule's bus handle — never the kernel.
 *
 * **For subsystem authors.** Each subsystem file (`fs.ts`, `ipc.ts`, `process.ts`, …) exports
 * `<SUBSYSTEM>_FUNCTIONS: readonly HostFunctionRow[]` (e.g. `PROCESS_FUNCTIONS`, in the
 * order of DESIGN §4), each row made with {@link defineHostFunction}; `table.ts` imports that
 * list. Kernel objects a subsystem needs beyond {@link HostServices} (a process registry, HTTP
 * streams, sockets, the identity store) are declared in that file with
 * `export const X_SERVICE = serviceKey<XService>("x")` and read with
 * `call.services.get(X_SERVICE)`; handles a guest holds across calls go in
 * `call.services.handles`. Each row documents its request fields, reply body, capability and
 * errors in `docs/host_abi.md` (a test checks every row appears there). Test with
 * `tests/_abi_fixture.ts` (`makeAbiKernel()`), which runs a real guest importing every row.
 *
 * @example
 * ```ts
 * import { defineHostFunction } from "./host_function.ts";
 *
 * const kvGet = defineHostFunction<{ key: string }>({
 *   name: "kv_get",
 *   subsystem: "kv",
 *   doc: "Reads one key of the capsule's per-principal namespace",
 *   capabilities: ["kv"],
 *   parse: (req) => {
 *     const key = req.string("key");
 *     req.end();
 *     return { key };
 *   },
 *   gate: () => ({ capability: "kv" }),
 *   run: async ({ key }, call) => (await call.services.kv.get(key)) ?? new Uint8Array(0),
 * });
 * if (kvGet.name !== "kv_get" || kvGet.inWorker) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import type { AuditInput } from "../kernel/audit/mod.ts";
import type { CapsuleManifest, IdentityLevel } from "../kernel/capsule/mod.ts";
import type { Clock } from "../kernel/clock.ts";
import type {
  BusContext,
  BusMessage,
  PayloadInput,
  PublishResult,
  RoutedSubscription,
  SubscribeOptions,
} from "../kernel/events/mod.ts";
import type { Authorization, AuthorizeOptions, SensitiveAction } from "../kernel/security/mod.ts";
import type { VfsRouter } from "../kernel/vfs/mod.ts";
import type { RequestReader } from "./encoding.ts";
import type { HandleTable } from "./handle_table.ts";
import type { HostLimits } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";

/** The subsystems of DESIGN §4, in table order. */
export const SUBSYSTEMS = [
  "fs",
  "ipc",
  "uplink",
  "kv",
  "http",
  "net",
  "identity",
  "lifecycle",
  "process",
  "approval",
  "security",
  "hooks",
  "clock",
  "log",
  "random",
] as const;

/** One subsystem of {@link SUBSYSTEMS}. */
export type Subsystem = typeof SUBSYSTEMS[number];

/** `[capabilities]` keys that gate with a target matched against a list in the manifest. */
export type TargetCapability =
  /** `fs_read`: `target` is a canonical VFS URI, e.g. `workspace://src/a.ts`. */
  | "fs_read"
  /** `fs_write`: `target` is a canonical VFS URI (writes, mkdir, deletes). */
  | "fs_write"
  /** `net`: `target` is `host:port`, host lowercased, e.g. `api.x.com:443`. */
  | "net"
  /** `net_bind`: `target` is `unix:<name>`. */
  | "net_bind"
  /** `host_process`: `target` is the program name as spawned, e.g. `git`. */
  | "host_process"
  /** `[publish]`: `target` is the concrete topic published. */
  | "publish"
  /** `[subscribe]`: `target` is the topic pattern subscribed to. */
  | "subscribe";

/** `[capabilities]` booleans. */
export type FlagCapability =
  | "kv"
  | "http"
  | "approval"
  | "uplink"
  | "allow_persistent"
  | "allow_prompt_injection";

/**
 * One manifest capability a call needs; the gate denies the call unless the capsule's
 * `Capsule.toml` declares it:
 *
 * - `{ capability: "fs_read", target: "workspace://src/a.ts" }` — a canonical VFS URI;
 * - `{ capability: "net", target: "api.x.com:443" }`, `{ capability: "net_bind", target: "unix:x" }`;
 * - `{ capability: "host_process", target: "git" }`;
 * - `{ capability: "publish", target: "topic.v1.x" }`, `{ capability: "subscribe", target: "a.*" }`;
 * - `{ capability: "identity", level: "link" }` — `admin` > `link` > `resolve`;
 * - `{ capability: "kv" }` and the other booleans.
 */
export type GateRequirement =
  | { readonly capability: TargetCapability; readonly target: string }
  | { readonly capability: "identity"; readonly level: IdentityLevel }
  | { readonly capability: FlagCapability };

/** What `gate` returns: one requirement, several (all must hold), or null (always allowed). */
export type GateSpec = GateRequirement | readonly GateRequirement[] | null;

/** The OK body of a call: bytes as they are, a string as UTF-8, nothing as an empty body. */
export type HostResult = Uint8Array | string | void;

/**
 * One host function: a row of the table. Build it with {@link defineHostFunction}.
 *
 * `A` is the parsed request. `parse` may be async only to canonicalize targets (routing a
 * path through the session VFS); it must not change anything.
 */
export interface HostFunction<A> {
  /** The import name under `astrid`, e.g. `kv_get`. */
  readonly name: string;
  /** The subsystem (the file that implements it). */
  readonly subsystem: Subsystem;
  /** One line on what it does (the reference's summary). */
  readonly doc: string;
  /** The capabilities it may need, for the docs and introspection (`[]`: none). */
  readonly capabilities: readonly (GateRequirement["capability"])[];
  /** True when the capsule worker answers it without crossing to the kernel. */
  readonly inWorker?: boolean;
  /** Decodes the request and canonicalizes its targets; throws `HostCallError`. */
  parse(req: RequestReader, call: HostCallContext): A | Promise<A>;
  /** The capabilities this call needs; the dispatcher checks them against the manifest. */
  gate(args: A, call: HostCallContext): GateSpec | Promise<GateSpec>;
  /** Does the work; resolves the OK body or throws `HostCallError`. */
  run(args: A, call: HostCallContext): Promise<HostResult>;
}

/** A row with its argument type erased: what the table holds and the dispatcher drives. */
export type HostFunctionRow = HostFunction<unknown>;

/** Declares a row; the one place a typed {@link HostFunction} becomes a table row. */
export function defineHostFunction<A>(row: HostFunction<A>): HostFunctionRow {
  return Object.freeze({ ...row, inWorker: row.inWorker === true }) as HostFunctionRow;
}

/** The session a call acts in: its id and the workspace it is bound to. */
export interface SessionScope {
  /** The session id (conversation). */
  readonly id: string;
  /** The workspace id (`.astrid/workspace-id`). */
  readonly workspaceId: string;
  /** The workspace root, an absolute canonical host path. */
  readonly workspaceRoot: string;
}

/**
 * Everything a host function may see of one call. The registry builds it per call from the
 * engine's `HostCall` (the principal comes from the invocation context, i.e. the bus message,
 * never from the guest).
 */
export interface HostCallContext {
  /** The principal the invocation acts for. */
  readonly principal: string;
  /** The calling capsule's name. */
  readonly capsule: string;
  /** The calling capsule's manifest (what the gate checks). */
  readonly manifest: CapsuleManifest;
  /** The export whose invocation makes the call. */
  readonly exportName: string;
  /** The session and workspace. */
  readonly session: SessionScope;
  /** Correlates logs, audit entries and replies. */
  readonly requestId?: string;
  /** Aborted when the invocation ends early: blocking functions must stop waiting. */
  readonly signal: AbortSignal;
  /** The time source. */
  readonly clock: Clock;
  /** Per-call limits (sizes, counts, timeouts); checked before any work. */
  readonly limits: HostLimits;
  /** The kernel services this call may use, scoped to the principal and capsule. */
  readonly services: HostServices;
}

/** A principal's session VFS: the router and the absolute host root of each scheme. */
export interface SessionVfs {
  /** `workspace://` (the session overlay), `home://`, `global://`. */
  readonly router: VfsRouter;
  /** Absolute canonical host directory of each mounted scheme's root. */
  readonly roots: Readonly<Record<string, string>>;
}

/** The capsule's KV namespace for the principal (`{principal}:capsule:{name}`). */
export interface ScopedKv {
  /** The namespace it is bound to. */
  readonly namespace: string;
  /** The value at `key`, or null. */
  get(key: string): Promise<Uint8Array | null>;
  /** Writes `value` at `key`. */
  set(key: string, value: Uint8Array): Promise<void>;
  /** Removes `key`; true when it existed. */
  delete(key: string): Promise<boolean>;
  /** Keys starting with `prefix` (default all), ascending. */
  listKeys(prefix?: string): Promise<string[]>;
  /** Removes keys starting with `prefix`; how many went. */
  clearPrefix(prefix: string): Promise<number>;
}

/**
 * The capsule's handle on the bus: publishes and subscribes with the kernel-stamped principal
 * and the capsule as source, so the bus applies the capsule's `[publish]`/`[subscribe]` ACL.
 */
export interface CapsuleBus {
  /** The context every operation carries (principal from the invocation, capsule source). */
  readonly ctx: BusContext;
  /** Publishes `data` on `topic`. */
  publish(
    topic: string,
    data: PayloadInput,
    options?: {
      request_id?: string;
      reply_to?: string;
      end_of_stream?: boolean;
      skip_own_interceptors?: boolean;
    },
  ): Promise<PublishResult>;
  /** Publishes a request and resolves the first reply. */
  request(
    topic: string,
    data: PayloadInput,
    options?: { timeoutMs?: number; signal?: AbortSignal; reply_to?: string },
  ): Promise<BusMessage>;
  /** Opens a routed subscription (close it with the handle table). */
  subscribe(pattern: string, options?: Omit<SubscribeOptions, "ctx">): RoutedSubscription;
}

/** The security pipeline, as a host function sees it. */
export interface HostSecurity {
  /** Runs policy → mode → token → allowance → budget → approval → audit on `action`. */
  authorize(action: SensitiveAction, options?: AuthorizeOptions): Promise<Authorization>;
}

/** The audit log, as a host function sees it. */
export interface HostAudit {
  /** Appends one decision; resolves once durable. */
  append(input: AuditInput): Promise<unknown>;
}

/** The capsule's `[env]` values for this principal (what `get_config`/`has_secret` read). */
export interface CapsuleConfigView {
  /** The value of a non-secret field (or its default), or undefined when unset. */
  get(name: string): Promise<string | readonly string[] | undefined>;
  /**
   * True when secret `name` has a value. The value itself reaches only the capsule that
   * declared the field (through `get_config(name)`, never in the all-fields listing), since a
   * provider must put its API key in a request; no other capsule and no log ever sees it.
   */
  hasSecret(name: string): Promise<boolean>;
}

/** Guest log levels (`astrid.log`). */
export type HostLogLevel = "trace" | "debug" | "info" | "warn" | "error";

/** Where the capsule's log lines go: its per-capsule file; ERROR lines also the daemon log. */
export interface CapsuleLogs {
  /** Writes one line. */
  write(level: HostLogLevel, message: string, timeMs: number): void | Promise<void>;
}

/**
 * A typed key for a service another subsystem defines (process registry, HTTP streams,
 * sockets, identity store, uplinks, hooks). The subsystem file exports the key; the registry
 * provides the value; the function reads it with {@link HostServices.get}.
 */
export interface ServiceKey<T> {
  /** The service's name, for messages. */
  readonly name: string;
  /** Phantom: the service's type. */
  readonly _type?: T;
}

/** Makes a {@link ServiceKey}. */
export function serviceKey<T>(name: string): ServiceKey<T> {
  return Object.freeze({ name });
}

/**
 * The narrow kernel services a host function may use, each already scoped to the principal
 * and capsule. The capsule registry implements it per call (members may be lazy).
 */
export interface HostServices {
  /** The principal's session VFS (opened on first use). */
  vfs(): Promise<SessionVfs>;
  /** The capsule's KV namespace for the principal. */
  readonly kv: ScopedKv;
  /** The capsule's bus handle. */
  readonly bus: CapsuleBus;
  /** The security pipeline. */
  readonly security: HostSecurity;
  /** The audit log. */
  readonly audit: HostAudit;
  /** The capsule's `[env]` for this principal. */
  readonly config: CapsuleConfigView;
  /** The capsule's log. */
  readonly logs: CapsuleLogs;
  /**
   * Handles (subscriptions, streams, sockets, processes) owned by this (capsule, principal):
   * they persist across calls and close when the capsule unloads.
   */
  readonly handles: HandleTable;
  /** A service another subsystem defines; throws `UNAVAILABLE` when the kernel has none. */
  get<T>(key: ServiceKey<T>): T;
}

/**
 * Runs `action` through the security pipeline and throws `HostCallError` unless it is
 * allowed: `DENIED` with the pipeline's reason, `TIMEOUT` when an approval timed out,
 * `CANCELLED` when the invocation ended.
 */
export async function authorizeOrThrow(
  call: HostCallContext,
  action: SensitiveAction,
  options: { costUsd?: number } = {},
): Promise<Authorization> {
  const auth = await call.services.security.authorize(action, {
    signal: call.signal,
    costUsd: options.costUsd,
  });
  if (auth.allowed) return auth;
  if (auth.cancelled) {
    throw new HostCallError(HostStatus.CANCELLED, `Cancelled: ${auth.reason}`);
  }
  if (auth.timedOut) {
    throw new HostCallError(HostStatus.TIMEOUT, `Approval timed out: ${auth.reason}`);
  }
  throw new HostCallError(HostStatus.DENIED, `Denied by ${auth.layer}: ${auth.reason}`);
}

/** The base of every sensitive action a call builds: principal, session, workspace. */
export function actionBase(
  call: HostCallContext,
): { principal: string; session: string; workspace: string } {
  return {
    principal: call.principal,
    session: call.session.id,
    workspace: call.session.workspaceId,
  };
}
