/**
 * A test kernel for host-ABI tests, built from real parts — REUSE IT for every subsystem's
 * tests (ipc, uplink, identity, lifecycle, hooks, process, http, net):
 *
 * - a `SqliteStore` in a temp `ASTRID_HOME`, an `AuditLog` signed by a fresh key, an
 *   `EventBus` with each capsule's manifest ACL, a `SecurityInterceptor` with an
 *   `InProcessApprovalBroker` (manual clock and timers), per-(principal, session)
 *   `OverlayVfs` + `VfsRouter.forSession` over a temp workspace;
 * - a `WasmEngine` whose handler is the real dispatcher (`createHostHandler`), running the ONE
 *   guest of `_abi_guest.ts` that imports every table function and exports `call_<name>`.
 *
 * ```ts ignore
 * const k = await makeAbiKernel();
 * try {
 *   const notes = await k.load("notes", `kv = true`);
 *   const r = await notes.call("kv_set", ["a", "1"], { principal: "alice" });
 *   assert.equal(r.status, HostStatus.OK);
 * } finally {
 *   await k.close();
 * }
 * ```
 *
 * Extra services (an identity store…) are passed with
 * `makeAbiKernel({ extensions: (scope) => [provide(KEY, value)] })`; extra rows with
 * `{ table: [...HOST_TABLE, ...MY_FUNCTIONS] }`. The native subsystems' services have their own
 * option: `makeAbiKernel({ native: { process: { sandbox: new NativeSandbox() }, http: {} } })`
 * provides `PROCESS_SERVICE`, `HTTP_SERVICE` and `NET_SERVICE` to every call (without it
 * `process_*` answer `UNAVAILABLE` and `http_*`/`net_*` use their defaults).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type AuditEntry, AuditLog } from "../kernel/audit/mod.ts";
import { TokenStore } from "../kernel/capabilities/mod.ts";
import { type CapsuleManifest, manifestAcl, parseManifest } from "../kernel/capsule/mod.ts";
import {
  type HostCall,
  type InvocationContext,
  type WasmCapsule,
  WasmEngine,
} from "../kernel/capsule/engine/wasm/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { type AstridConfig, DEFAULT_CONFIG, type SecurityMode } from "../kernel/config/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { EventBus, ManualTimers } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import {
  type ApprovalRequest,
  type ApprovalResponse,
  InProcessApprovalBroker,
  SecurityInterceptor,
} from "../kernel/security/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";
import { overlaySessionDir, OverlayVfs } from "../kernel/vfs/mod.ts";
import {
  capsuleBus,
  CapsuleLogWriter,
  createHostHandler,
  createHostServices,
  decodeReply,
  decodeText,
  DEFAULT_HOST_LIMITS,
  encodeFields,
  type FieldInput,
  guestLogSink,
  HandleTable,
  HOST_TABLE,
  type HostCallContext,
  type HostFunctionRow,
  hostFunctionSpecs,
  type HostLimits,
  type HostStatus,
  hostStatusName,
  HTTP_SERVICE,
  type HttpService,
  NET_SERVICE,
  type NetService,
  openSessionVfs,
  PROCESS_SERVICE,
  type ProcessService,
  provide,
  scopedKv,
  type ServiceEntry,
  type SessionVfs,
} from "../host_abi/mod.ts";
import { abiGuest } from "./_abi_guest.ts";

/** The invocation context of the fixture: the principal and the session it acts in. */
export interface AbiContext extends InvocationContext {
  /** The session id (default `s1`). */
  session?: string;
}

/** How the fixture's frontend answers approvals. */
export type Approver =
  | ApprovalResponse["answer"]
  | "none"
  | ((request: ApprovalRequest) => ApprovalResponse | undefined);

/** The native subsystems' services {@link makeAbiKernel} provides to every call. */
export interface AbiNativeServices {
  /** `PROCESS_SERVICE` (a `NativeSandbox`; the overlay defaults to the session's). */
  process?: ProcessService;
  /** `HTTP_SERVICE` (resolver, CA certificates, policy, limits). */
  http?: HttpService;
  /** `NET_SERVICE` (socket directory, limits). */
  net?: NetService;
}

/** Options of {@link makeAbiKernel}. */
export interface AbiKernelOptions {
  /** The security mode (default `guided`: writes are asked, the approver answers). */
  mode?: SecurityMode;
  /** How approvals are answered: an answer, `"none"` (no frontend attached) or a function. */
  approver?: Approver;
  /** Policy denied paths (default: the config's defaults, e.g. `**\/.env`). */
  deniedPaths?: string[];
  /** Rows served (default: the table). */
  table?: readonly HostFunctionRow[];
  /** Limit overrides. */
  limits?: Partial<HostLimits>;
  /** Services of other subsystems, per (principal, capsule). */
  extensions?: (scope: { principal: string; capsule: string; session: string }) => ServiceEntry[];
  /** The process, http and net services, the same for every call (default: none). */
  native?: AbiNativeServices;
}

/** A decoded reply. */
export interface AbiReply {
  /** The status number. */
  status: number;
  /** Its name (`OK`, `DENIED`, …). */
  name: string;
  /** The body bytes. */
  body: Uint8Array;
  /** The body as UTF-8 text. */
  text: string;
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
}

/** Who a call acts for. */
export interface CallAs {
  /** The principal (default `default`). */
  principal?: string;
  /** The session (default `s1`). */
  session?: string;
  /** A request id. */
  requestId?: string;
  /** Aborts the invocation. */
  signal?: AbortSignal;
}

/** A loaded test capsule. */
export interface AbiCapsule {
  /** Its name. */
  readonly name: string;
  /** Its manifest. */
  readonly manifest: CapsuleManifest;
  /** The engine's capsule. */
  readonly wasm: WasmCapsule<AbiContext>;
  /** Calls host function `fn` through the guest's `call_<fn>` export with `fields`. */
  call(fn: string, fields?: readonly FieldInput[], as?: CallAs): Promise<AbiReply>;
  /** Calls `call_<fn>` with raw request bytes (malformed requests). */
  callRaw(fn: string, request: Uint8Array, as?: CallAs): Promise<AbiReply>;
}

/** The fixture kernel. */
export interface AbiKernel {
  /** The temp directory holding everything. */
  readonly root: string;
  /** The Astrid home. */
  readonly home: AstridHome;
  /** The workspace directory (the overlays' lower layer). */
  readonly workspace: string;
  /** The workspace id. */
  readonly workspaceId: string;
  /** The store. */
  readonly store: SqliteStore;
  /** The audit log. */
  readonly audit: AuditLog;
  /** The bus. */
  readonly bus: EventBus;
  /** The security pipeline. */
  readonly security: SecurityInterceptor;
  /** The approval broker. */
  readonly broker: InProcessApprovalBroker;
  /** Manual time. */
  readonly clock: ManualClock;
  /** Manual timers (approval timeouts). */
  readonly timers: ManualTimers;
  /** The engine. */
  readonly engine: WasmEngine<AbiContext>;
  /** Guest log lines land here. */
  readonly logs: CapsuleLogWriter;
  /** Errors the dispatcher reported (answered INTERNAL). */
  readonly errors: unknown[];
  /** Approval requests the frontend saw. */
  readonly approvals: ApprovalRequest[];
  /**
   * Loads the table guest as capsule `name` with `capabilities` (TOML lines of
   * `[capabilities]`) and optional extra TOML sections (`[publish]`…).
   */
  load(name: string, capabilities?: string, extra?: string): Promise<AbiCapsule>;
  /** The session overlay of (principal, session). */
  overlay(principal?: string, session?: string): Promise<OverlayVfs>;
  /** The session VFS of (principal, session). */
  sessionVfs(principal?: string, session?: string): Promise<SessionVfs>;
  /** The principal's audit entries, oldest first. */
  auditEntries(principal?: string): Promise<AuditEntry[]>;
  /** Stops everything and removes the temp directory. */
  close(): Promise<void>;
}

/** The default config with a mode and policy paths. */
function config(options: AbiKernelOptions): AstridConfig {
  const c = structuredClone(DEFAULT_CONFIG) as unknown as {
    security: { mode: string; policy: { denied_paths: string[] } };
  };
  if (options.mode !== undefined) c.security.mode = options.mode;
  if (options.deniedPaths !== undefined) c.security.policy.denied_paths = options.deniedPaths;
  return c as unknown as AstridConfig;
}

/** Builds the test kernel; close it with `close()`. */
export async function makeAbiKernel(options: AbiKernelOptions = {}): Promise<AbiKernel> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-abi-" }));
  const home = await AstridHome.open(join(root, "home"));
  const workspace = join(root, "workspace");
  await Deno.mkdir(workspace);
  const workspaceId = "w1";
  const store = await SqliteStore.open(join(root, "astrid.db"));
  const key = await KeyPair.generate();
  const clock = new ManualClock(1_700_000_000_000);
  const timers = new ManualTimers(clock);
  const audit = new AuditLog(store, { signer: key, clock });
  const tokens = new TokenStore(store, { clock, trustedIssuers: [key.publicKey] });
  const broker = new InProcessApprovalBroker();
  const security = new SecurityInterceptor({
    config: config(options),
    audit,
    tokens,
    store,
    signer: key,
    broker,
    clock,
    timers,
  });
  const bus = new EventBus({ clock, timers });
  const logs = new CapsuleLogWriter(home);
  const errors: unknown[] = [];
  const approvals: ApprovalRequest[] = [];
  const limits: HostLimits = { ...DEFAULT_HOST_LIMITS, ...options.limits };
  const manifests = new Map<string, CapsuleManifest>();
  const overlays = new Map<string, Promise<OverlayVfs>>();
  const vfses = new Map<string, Promise<SessionVfs>>();
  const handles = new Map<string, HandleTable>();
  const attached = new Set<string>();
  const approver = options.approver ?? "allow_once";
  const native: ServiceEntry[] = [];
  if (options.native?.process !== undefined) {
    native.push(provide(PROCESS_SERVICE, options.native.process));
  }
  if (options.native?.http !== undefined) native.push(provide(HTTP_SERVICE, options.native.http));
  if (options.native?.net !== undefined) native.push(provide(NET_SERVICE, options.native.net));

  const overlay = (principal = "default", session = "s1"): Promise<OverlayVfs> => {
    const k = `${principal}\0${session}`;
    let o = overlays.get(k);
    if (o === undefined) {
      o = OverlayVfs.open(
        workspace,
        overlaySessionDir(home, { principal, workspaceId, session }),
      );
      overlays.set(k, o);
    }
    return o;
  };
  const sessionVfs = (principal = "default", session = "s1"): Promise<SessionVfs> => {
    const k = `${principal}\0${session}`;
    let v = vfses.get(k);
    if (v === undefined) {
      v = (async () =>
        await openSessionVfs(home, {
          principal,
          workspace: await overlay(principal, session),
          workspaceRoot: workspace,
        }))();
      vfses.set(k, v);
    }
    return v;
  };
  const attach = (principal: string, session: string) => {
    const k = `${principal}\0${session}`;
    if (approver === "none" || attached.has(k)) return;
    attached.add(k);
    const frontend = broker.attach(principal, session, {
      interactive: true,
      onRequest: (request) => {
        approvals.push(request);
        const response = typeof approver === "function" ? approver(request) : { answer: approver };
        if (response !== undefined) frontend.respond(request.id, response);
      },
    });
  };

  const resolve = (call: HostCall<AbiContext>): HostCallContext => {
    const manifest = manifests.get(call.capsule);
    if (manifest === undefined) throw new Error(`No manifest for capsule "${call.capsule}"`);
    const principal = call.context.principal;
    const session = call.context.session ?? "s1";
    attach(principal, session);
    const hk = `${call.capsule}\0${principal}`;
    let table = handles.get(hk);
    if (table === undefined) {
      table = new HandleTable({ maxPerKind: limits.maxHandlesPerKind });
      handles.set(hk, table);
    }
    return {
      principal,
      capsule: call.capsule,
      manifest,
      exportName: call.exportName,
      session: { id: session, workspaceId, workspaceRoot: workspace },
      requestId: call.context.requestId,
      signal: call.signal,
      clock,
      limits,
      services: createHostServices({
        vfs: () => sessionVfs(principal, session),
        kv: scopedKv(store, principal, call.capsule),
        bus: capsuleBus(bus, { principal, capsule: call.capsule }),
        security,
        audit,
        handles: table,
        logs: logs.forCapsule(principal, call.capsule, call.context.requestId),
        extensions: [
          ...native,
          ...(options.extensions?.({ principal, capsule: call.capsule, session }) ?? []),
        ],
      }),
    };
  };

  const engine = new WasmEngine<AbiContext>({
    hostFunctions: hostFunctionSpecs(),
    handler: createHostHandler(resolve, {
      table: options.table ?? HOST_TABLE,
      onError: (error) => errors.push(error),
    }),
    onLog: guestLogSink(logs),
    idleCheckMs: 0,
    pool: { minInstances: 1, maxInstances: 2 },
  });

  const toReply = (bytes: Uint8Array): AbiReply => {
    const { status, body } = decodeReply(bytes);
    const text = decodeText(body);
    return {
      status,
      name: hostStatusName(status),
      body: body.slice(),
      text,
      json: <T>() => JSON.parse(text) as T,
    };
  };

  const load = async (name: string, capabilities = "", extra = ""): Promise<AbiCapsule> => {
    const manifest = parseManifest(
      `[package]\nname = "${name}"\nversion = "0.1.0"\n\n[wasm]\n\n[capabilities]\n${capabilities}\n\n${extra}\n`,
      { file: `${name}/Capsule.toml` },
    );
    manifests.set(name, manifest);
    bus.setAcl(name, manifestAcl(manifest));
    const wasm = await engine.load(name, abiGuest());
    const callRaw = async (fn: string, request: Uint8Array, as: CallAs = {}) => {
      const context: AbiContext = {
        principal: as.principal ?? "default",
        session: as.session ?? "s1",
        requestId: as.requestId,
      };
      return toReply(await wasm.invoke(`call_${fn}`, request, { context, signal: as.signal }));
    };
    return {
      name,
      manifest,
      wasm,
      callRaw,
      call: (fn, fields = [], as) => callRaw(fn, encodeFields(fields), as),
    };
  };

  return {
    root,
    home,
    workspace,
    workspaceId,
    store,
    audit,
    bus,
    security,
    broker,
    clock,
    timers,
    engine,
    logs,
    errors,
    approvals,
    load,
    overlay,
    sessionVfs,
    auditEntries: async (principal = "default") => {
      await audit.flush();
      return (await audit.list(principal, { limit: 10_000 })).sort((a, b) => a.seq - b.seq);
    },
    close: async () => {
      await engine.close();
      for (const table of handles.values()) await table.closeAll();
      bus.close();
      await logs.flush();
      await audit.close();
      await store.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** Asserts-friendly: the status name of a reply's status number. */
export function statusName(status: HostStatus | number): string {
  return hostStatusName(status);
}

/** Asserts `reply` is OK (the message shows what it was otherwise) and returns it. */
export function expectOk(reply: AbiReply): AbiReply {
  assert.equal(reply.name, "OK", `expected OK, got ${reply.name}: ${reply.text}`);
  return reply;
}

/** Asserts `reply` has status `name` and, when given, a message matching `message`. */
export function expectStatus(reply: AbiReply, name: string, message?: RegExp): void {
  assert.equal(reply.name, name, `expected ${name}, got ${reply.name}: ${reply.text}`);
  if (message !== undefined) assert.match(reply.text, message);
}

/** Runs `body` on a fresh ABI kernel, checks no host function failed unexpectedly, closes it. */
export async function withKernel(
  body: (k: AbiKernel) => Promise<void>,
  options: AbiKernelOptions = {},
): Promise<void> {
  const k = await makeAbiKernel(options);
  try {
    await body(k);
    assert.deepEqual(k.errors, [], "no host function failed unexpectedly");
  } finally {
    await k.close();
  }
}

/** The manifest-layer denials recorded for `principal`, as [action, resource, rule]. */
export async function manifestDenials(k: AbiKernel, principal = "default"): Promise<string[][]> {
  return (await k.auditEntries(principal))
    .filter((e) => e.layer === "manifest")
    .map((e) => {
      assert.equal(e.decision, "denied");
      assert.equal(e.decider, "manifest");
      return [e.action, e.resource, e.rule];
    });
}
