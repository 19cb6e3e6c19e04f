/**
 * `McpHost`: the mcp engine. It runs the MCP servers that capsules (`[[mcp_server]]`) and the
 * operator (`etc/servers.toml`) declare and puts their tools on the bus as ordinary tools, so
 * the orchestrator cannot tell them from WASM tools (`docs/mcp.md`).
 *
 * - **Catalog.** When the host starts (and when a server is added or reloaded), each server is
 *   started once as a probe — sandboxed, with an empty directory as `${workspace}` — to learn
 *   its tools, resources and prompts; then stopped. A server that cannot start (hash mismatch,
 *   no sandbox without the operator's opt-in, a missing program) is `refused`, with the reason
 *   in {@link McpHost.servers} and the log, and offers no tools.
 * - **Bus.** Each tool `t` of server `s` is bound as `tool.v1.execute.<s__t>` (a routed
 *   subscription, scoped to the owning capsule's principal), answered on `….result` with the
 *   payload `capsule_dispatch.ts` defines plus `server` and the raw MCP result under `mcp`;
 *   `tool.v1.request.describe` is answered on `tool.v1.response.describe.<capsule>`;
 *   progress goes out on `tool.v1.execute.<s__t>.progress` (`{ request_id, call_id?, progress,
 *   total?, message?, session? }`), and the result says how many were sent (`progress_count`)
 *   so a relay can wait for the last of them; `tool.v1.request.cancel`
 *   (`{ request_id }` or `{ call_id }`) cancels a call in flight of the same principal; a changed tool list is announced on
 *   `tool.v1.list_changed` (`{ server, capsule, tools }`).
 * - **A call.** The payload's `arguments` (else the payload without `session`,
 *   `workspace_id`, `call_id`, `request_id`); its `session` and `workspace_id` (stamped by the
 *   kernel) place it. Path arguments are checked (`path_guard.ts`): one outside the server's
 *   grants is denied and audited (layer `manifest`) before the server sees anything. Then
 *   `security.authorize({ kind: "tool.execute", tool: "<s>/<t>", native: true, paths })`
 *   (policy, mode, token, allowance, approval, audit). Then the call runs on the instance of
 *   (server, principal, workspace) — one per (principal, workspace), DESIGN §6a — started on
 *   first use over the calling session's overlay and moved to another session's when one of
 *   its calls comes (stopped, writes folded, started again); or, for a server whose grants
 *   name no workspace path, on one per principal over an empty directory: it never sees the
 *   workspace.
 * - **Overlay.** A sandboxed instance sees the session overlay at the workspace root and
 *   writes into its own upper dir, folded into the session when it stops; while it runs it
 *   holds the session (VFS writes, commit and discard wait), so it stops as soon as it is idle
 *   and something waits, and {@link McpHost.settle} stops it before a diff. The next call
 *   restarts it.
 * - **Sessions.** When `astrid.v1.session.ended` says a session's last frontend left, the
 *   instances working on its overlay are stopped (writes folded) and let go of it; they keep
 *   their crash counts for the workspace's next call.
 * - **Management.** `astrid.v1.mcp.request.servers` and `astrid.v1.mcp.request.reload`
 *   (`{ server? }`) are answered on the request's `reply_to` with `{ ok, result | error }`.
 *
 * @module
 */
import type { AuditInput } from "../audit/mod.ts";
import { type Clock, systemClock } from "../clock.ts";
import {
  type BusContext,
  type BusMessage,
  type EventBus,
  type JsonValue,
  type MessageSource,
  type RoutedSubscription,
  systemTimers,
  type Timers,
} from "../events/mod.ts";
import { principalId } from "../identity/mod.ts";
import type { Authorization, ToolExecuteAction } from "../security/mod.ts";
import type { OverlayVfs } from "../vfs/mod.ts";
import { join } from "node:path";
import { argumentPaths } from "./argument_paths.ts";
import { type McpElicitor, relayElicitation } from "./elicit_relay.ts";
import { McpCode, McpError } from "./errors.ts";
import type { McpLauncher } from "./launcher.ts";
import type { CallToolResult, ElicitResult, Tool } from "./mcp_connection.ts";
import { discardLogSink } from "./mcp_log.ts";
import { checkPaths, parseGrants, type SchemeRoots } from "./path_guard.ts";
import {
  type InstanceInfo,
  type InstanceScope,
  type McpLogSink,
  McpServerInstance,
  type RestartPolicy,
} from "./server_instance.ts";
import { describeOrigin, type McpServerSpec } from "./server_spec.ts";
import { DEFAULT_MCP_SETTINGS, type McpSettings } from "./servers_toml.ts";
import { mcpToolName, securityToolId } from "./tool_name.ts";

/** Who declared a set of servers, and whose calls they serve. */
export interface McpOwner {
  /** The capsule's key (its bus source name), when a capsule declared them. */
  readonly capsuleKey?: string;
  /** The capsule's name (shown in describe answers and results). */
  readonly capsule?: string;
  /** Serve only this principal's calls (a principal or workspace capsule). */
  readonly principal?: string;
  /** Serve only calls from this workspace (a workspace capsule). */
  readonly workspaceId?: string;
}

/** The overlay a call runs over. */
export interface McpScope {
  /** The workspace root, real path. */
  readonly workspaceRoot: string;
  /** The session's overlay. */
  readonly overlay: OverlayVfs;
}

/** Finds the overlay of (principal, workspace, session); undefined when there is none. */
export type McpScopeResolver = (
  call: { principal: string; session: string; workspaceId: string },
) => Promise<McpScope | undefined>;

/** The security pipeline, as the engine uses it (structurally `SecurityInterceptor`). */
export interface McpSecurity {
  /** Decides on a tool call; resolves once its audit entry is durable. */
  authorize(action: ToolExecuteAction, options?: { signal?: AbortSignal }): Promise<Authorization>;
}

/** The audit log, as the engine uses it (structurally `AuditLog`). */
export interface McpAudit {
  /** Appends one decision; resolves once durable. */
  append(input: AuditInput): Promise<unknown>;
}

/** Options of {@link McpHost}. */
export interface McpHostOptions {
  /** The bus tools are bound on. */
  bus: EventBus;
  /** Decides every call. */
  security: McpSecurity;
  /** Records path denials and reloads. */
  audit: McpAudit;
  /** Starts server processes: the namespace sandbox, or `DirectLauncher` when none exists. */
  launcher: McpLauncher;
  /** Why there is no sandbox (shown when a server is refused or runs without one). */
  noSandboxReason?: string;
  /** The settings (default {@link DEFAULT_MCP_SETTINGS}). */
  settings?: McpSettings;
  /** A private directory for upper dirs and probes (e.g. `var/mcp`). */
  scratchDir: string;
  /** Finds a session's overlay. */
  resolveScope: McpScopeResolver;
  /** The `home://` and `global://` roots of a principal (for grants naming them). */
  roots?: (principal: string) => SchemeRoots;
  /** Relays servers' elicitation requests to the user (none: declined). */
  elicitor?: McpElicitor;
  /** Receives log lines (default: dropped). */
  log?: McpLogSink;
  /** Time source. */
  clock?: Clock;
  /** Restart and idle timers. */
  timers?: Timers;
  /** Restart backoff. */
  restart?: RestartPolicy;
  /** The environment servers inherit from (default `Deno.env`). */
  env?: { get(name: string): string | undefined };
}

/** A tool as describe answers it. */
export interface McpToolInfo {
  /** The bus name, `<server>__<tool>`. */
  readonly name: string;
  /** The tool's name on its server. */
  readonly mcpName: string;
  /** The server. */
  readonly server: string;
  /** The capsule that declared the server, or `mcp:<server>` for an operator server. */
  readonly capsule: string;
  /** Its description. */
  readonly description: string;
  /** JSON Schema of its arguments. */
  readonly input_schema: JsonValue;
  /** True when the server says it only reads (`readOnlyHint`). */
  readonly readOnly: boolean;
}

/** Where a server stands. */
export type McpServerState = "pending" | "ready" | "refused";

/** One server, as {@link McpHost.servers} reports it. */
export interface McpServerStatus {
  /** Its name. */
  readonly name: string;
  /** Unique among declared servers: the name, `@<capsule key>` for a capsule's. */
  readonly id: string;
  /** Who declared it. */
  readonly origin: string;
  /** `pending` (probing), `ready`, or `refused` (see `error`). */
  readonly state: McpServerState;
  /** Why it was refused. */
  readonly error?: string;
  /** Its error code when refused. */
  readonly code?: string;
  /** Its tools' bus names. */
  readonly tools: readonly string[];
  /** How many resources it lists. */
  readonly resources: number;
  /** How many prompts it lists. */
  readonly prompts: number;
  /** The name and version it announced. */
  readonly serverInfo?: { name: string; version: string };
  /** The protocol version agreed. */
  readonly protocolVersion?: string;
  /** Whether it runs in the namespace sandbox. */
  readonly sandboxed: boolean;
  /** What its `hash` covers and the hash found at the last probe (pin this). */
  readonly target?: { readonly kind: string; readonly file: string; readonly hash?: string };
  /** True when a `hash` is declared (and matched). */
  readonly pinned: boolean;
  /** Its running instances. */
  readonly instances: readonly (InstanceInfo & {
    readonly principal: string;
    readonly workspaceId?: string;
    readonly session?: string;
  })[];
}

/** The topic announcing a changed tool list. */
export const TOOLS_CHANGED_TOPIC = "tool.v1.list_changed";
/** The topic a call is cancelled on: `{ request_id }`. */
export const TOOL_CANCEL_TOPIC = "tool.v1.request.cancel";
/** Published by the daemon when the last frontend of a session left: `{ session }`. */
export const SESSION_ENDED_TOPIC = "astrid.v1.session.ended";
/** The prefix of the engine's management requests. */
export const MCP_REQUEST_PREFIX = "astrid.v1.mcp.request";

const SOURCE: MessageSource = { kind: "kernel", name: "mcp" };
const KERNEL_CTX: BusContext = { principal: principalId("default"), source: SOURCE };
const DESCRIBE_TOPIC = "tool.v1.request.describe";
const CALL_KEYS = new Set(["session", "workspace_id", "call_id", "request_id"]);

interface BoundTool {
  readonly info: McpToolInfo;
  readonly sub: RoutedSubscription;
}

interface Entry {
  readonly id: string;
  spec: McpServerSpec;
  /**
   * `fs_read ∪ fs_write` and `fs_write` of the spec, whether they name the workspace, and the
   * workspace paths they name when narrower than the whole (what the sandbox shows).
   */
  grants: {
    read: readonly string[];
    write: readonly string[];
    workspace: boolean;
    view?: readonly string[];
  };
  readonly owner: McpOwner;
  state: McpServerState;
  error?: string;
  code?: string;
  tools: Map<string, BoundTool>;
  resources: number;
  prompts: number;
  serverInfo?: { name: string; version: string };
  protocolVersion?: string;
  target?: { readonly kind: string; readonly file: string; readonly hash?: string };
  describe?: RoutedSubscription;
  readonly instances: Map<string, McpServerInstance>;
  probing?: Promise<void>;
}

/** The mcp engine; see the module doc. */
export class McpHost {
  readonly #o: McpHostOptions;
  readonly #settings: McpSettings;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #log: McpLogSink;
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, AbortController>();
  readonly #kernelSubs: RoutedSubscription[] = [];
  readonly #serverHome: string | undefined;
  #started = false;
  #closed = false;

  /** Creates an engine with no servers; {@link start} binds it. */
  constructor(options: McpHostOptions) {
    this.#o = options;
    this.#settings = options.settings ?? DEFAULT_MCP_SETTINGS;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.log ?? discardLogSink;
    this.#serverHome = options.launcher.sandboxed ? "/tmp" : (options.env ?? Deno.env).get("HOME");
  }

  /** True when servers run in the namespace sandbox. */
  get sandboxed(): boolean {
    return this.#o.launcher.sandboxed;
  }

  /**
   * Declares `specs` (one capsule's, or the operator's) for `owner`. Throws
   * `MCP_SERVER_DUPLICATE` when a name is taken (nothing is added then). Once started, new
   * servers are probed at once; the promise settles when their catalogs are known.
   */
  async addServers(specs: readonly McpServerSpec[], owner: McpOwner = {}): Promise<void> {
    this.#assertOpen();
    const seen = new Set<string>();
    for (const spec of specs) {
      const other = [...this.#entries.values()].find((e) =>
        e.spec.name === spec.name && overlaps(e.owner, owner)
      );
      if (other !== undefined || seen.has(spec.name)) {
        const sources = [
          describeOrigin(spec.origin),
          ...(other === undefined ? [] : [describeOrigin(other.spec.origin)]),
        ];
        throw new McpError(
          McpCode.MCP_SERVER_DUPLICATE,
          `MCP server "${spec.name}" is declared twice for the same principals (${
            sources.join(", ")
          }): rename one`,
          { data: { server: spec.name, sources } },
        );
      }
      seen.add(spec.name);
    }
    const added: Entry[] = [];
    for (const spec of specs) {
      const entry: Entry = {
        id: owner.capsuleKey === undefined ? spec.name : `${spec.name}@${owner.capsuleKey}`,
        spec,
        grants: grantsOf(spec),
        owner,
        state: "pending",
        tools: new Map(),
        resources: 0,
        prompts: 0,
        instances: new Map(),
      };
      this.#entries.set(entry.id, entry);
      added.push(entry);
    }
    if (this.#started) await Promise.all(added.map((e) => this.#probe(e)));
  }

  /** Removes the servers of the capsule `capsuleKey` (unload): stops them, unbinds their tools. */
  async removeOwner(capsuleKey: string): Promise<void> {
    const gone = [...this.#entries.values()].filter((e) => e.owner.capsuleKey === capsuleKey);
    await Promise.all(gone.map((e) => this.#remove(e)));
  }

  /** Removes the servers named `name` (every scope); false when none is declared. */
  async removeServer(name: string): Promise<boolean> {
    const gone = [...this.#entries.values()].filter((e) => e.spec.name === name);
    await Promise.all(gone.map((e) => this.#remove(e)));
    return gone.length > 0;
  }

  /** Binds cancellation and management, then probes every server; resolves once all are known. */
  async start(): Promise<McpServerStatus[]> {
    this.#assertOpen();
    if (!this.#started) {
      this.#started = true;
      const bus = this.#o.bus;
      const cancel = bus.subscribe(TOOL_CANCEL_TOPIC, { ctx: KERNEL_CTX });
      this.#kernelSubs.push(cancel);
      void pump(cancel, (msg) => this.#cancel(msg));
      const ended = bus.subscribe(SESSION_ENDED_TOPIC, { ctx: KERNEL_CTX });
      this.#kernelSubs.push(ended);
      void pump(ended, (msg) => this.#sessionEnded(msg));
      for (const request of ["servers", "reload"]) {
        const sub = bus.subscribe(`${MCP_REQUEST_PREFIX}.${request}`, { ctx: KERNEL_CTX });
        this.#kernelSubs.push(sub);
        void pump(sub, (msg) => this.#management(request, msg));
      }
    }
    await Promise.all([...this.#entries.values()].map((e) => this.#probe(e)));
    return this.servers();
  }

  /** Every declared server and its instances. */
  servers(): McpServerStatus[] {
    return [...this.#entries.values()].map((e) => this.#status(e));
  }

  /** The tools `principal` may call (default: every tool). */
  tools(options: { principal?: string } = {}): McpToolInfo[] {
    const out: McpToolInfo[] = [];
    for (const e of this.#entries.values()) {
      if (options.principal !== undefined && e.owner.principal !== undefined) {
        if (e.owner.principal !== options.principal) continue;
      }
      for (const t of e.tools.values()) out.push(t.info);
    }
    return out;
  }

  /**
   * Stops and restarts the catalog of `name` (every server when absent) without restarting
   * the daemon: running instances are stopped (their writes folded), crash counts forgotten,
   * the hash checked again and the tools re-listed. Throws `MCP_SERVER_UNKNOWN`.
   */
  async reload(name?: string): Promise<McpServerStatus[]> {
    this.#assertOpen();
    const entries = name === undefined ? [...this.#entries.values()] : this.#named(name);
    await Promise.all(entries.map(async (e) => {
      await Promise.all([...e.instances.values()].map((i) => i.reset()));
      e.instances.clear();
      e.state = "pending";
      e.error = undefined;
      e.code = undefined;
      await this.#probe(e);
    }));
    return entries.map((e) => this.#status(e));
  }

  /** Replaces the spec of the operator's server (servers.toml changed) and reloads it. */
  async replaceSpec(spec: McpServerSpec): Promise<McpServerStatus> {
    const e = this.#named(spec.name).find((x) => x.owner.capsuleKey === undefined);
    if (e === undefined) {
      throw new McpError(McpCode.MCP_SERVER_UNKNOWN, `No operator MCP server "${spec.name}"`, {
        data: { server: spec.name },
      });
    }
    await Promise.all([...e.instances.values()].map((i) => i.reset()));
    e.instances.clear();
    e.spec = spec;
    e.grants = grantsOf(spec);
    e.state = "pending";
    await this.#probe(e);
    return this.#status(e);
  }

  /**
   * Stops the instances working on the overlay of (principal, workspace[, session]) and folds
   * their writes into it. Commit, discard and diff call it first; the next tool call restarts
   * what it needs.
   */
  async settle(scope: { principal: string; workspaceId: string; session?: string }): Promise<void> {
    const stops: Promise<void>[] = [];
    for (const e of this.#entries.values()) {
      for (const inst of e.instances.values()) {
        const s = inst.scope;
        if (s === undefined || s.principal !== scope.principal) continue;
        if (s.workspaceId !== scope.workspaceId) continue;
        if (scope.session !== undefined && s.session !== scope.session) continue;
        stops.push(inst.stop("settled"));
      }
    }
    await Promise.all(stops);
  }

  /**
   * Stops the instances working on the overlay of (principal, session), their writes folded,
   * and lets go of that overlay (the session ended). They stay, with their crash counts, for
   * the next call of another session of their workspace.
   */
  async settleSession(principal: string, session: string): Promise<void> {
    const releasing: Promise<boolean>[] = [];
    for (const e of this.#entries.values()) {
      for (const inst of e.instances.values()) {
        if (inst.scope?.principal !== principal) continue;
        releasing.push(inst.release(session));
      }
    }
    await Promise.all(releasing);
  }

  /** Resources and prompts of server `name` (started as a probe). */
  async catalog(name: string): Promise<{ resources: JsonValue[]; prompts: JsonValue[] }> {
    const probe = this.#newInstance(this.#named(name)[0], undefined);
    try {
      const c = await probe.catalog();
      return {
        resources: c.resources as unknown as JsonValue[],
        prompts: c.prompts as unknown as JsonValue[],
      };
    } finally {
      await probe.close();
    }
  }

  /** Stops every server, unbinds every tool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#inFlight.values()) c.abort(new Error("The MCP engine is shutting down"));
    for (const s of this.#kernelSubs) s.close();
    await Promise.all([...this.#entries.values()].map((e) => this.#remove(e)));
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new McpError(McpCode.MCP_CLOSED, "The MCP engine is shut down", { data: {} });
    }
  }

  #named(name: string): Entry[] {
    const found = [...this.#entries.values()].filter((e) => e.spec.name === name);
    if (found.length === 0) {
      throw new McpError(
        McpCode.MCP_SERVER_UNKNOWN,
        `No MCP server "${name}" is declared: see astrid mcp servers`,
        { data: { server: name } },
      );
    }
    return found;
  }

  async #remove(e: Entry): Promise<void> {
    this.#entries.delete(e.id);
    for (const t of e.tools.values()) t.sub.close();
    e.tools.clear();
    e.describe?.close();
    e.describe = undefined;
    await Promise.all([...e.instances.values()].map((i) => i.close()));
    e.instances.clear();
  }

  #status(e: Entry): McpServerStatus {
    return {
      name: e.spec.name,
      id: e.id,
      origin: describeOrigin(e.spec.origin),
      state: e.state,
      ...(e.error === undefined ? {} : { error: e.error }),
      ...(e.code === undefined ? {} : { code: e.code }),
      tools: [...e.tools.keys()],
      resources: e.resources,
      prompts: e.prompts,
      ...(e.serverInfo === undefined ? {} : { serverInfo: e.serverInfo }),
      ...(e.protocolVersion === undefined ? {} : { protocolVersion: e.protocolVersion }),
      sandboxed: this.#o.launcher.sandboxed,
      ...(e.target === undefined ? {} : { target: e.target }),
      pinned: e.spec.hash !== undefined,
      instances: [...e.instances].map(([key, i]) => {
        const [principal, workspaceId] = key.split("\0"); // see #instanceFor
        return {
          ...i.info(),
          principal,
          ...(workspaceId === "" ? {} : { workspaceId }),
          ...(i.scope === undefined ? {} : { session: i.scope.session }),
        };
      }),
    };
  }

  /** Refuses to start anything without a sandbox unless the operator opted in. */
  #sandboxGate(e: Entry): void {
    if (this.#o.launcher.sandboxed) return;
    const why = this.#o.noSandboxReason ?? "no namespace sandbox is available";
    if (!this.#settings.allowUnsandboxed) {
      throw new McpError(
        McpCode.MCP_SANDBOX_UNAVAILABLE,
        `Refused to start MCP server "${e.spec.name}": ${why}, and unsandboxed servers are not allowed: set allow_unsandboxed = true under [settings] in etc/servers.toml to run it without one (its writes then go straight to the workspace)`,
        { data: { server: e.spec.name, reason: why } },
      );
    }
  }

  #newInstance(e: Entry, scope: InstanceScope | undefined): McpServerInstance {
    this.#sandboxGate(e);
    const name = e.spec.name;
    return new McpServerInstance({
      spec: e.spec,
      launcher: this.#o.launcher,
      ...(scope === undefined ? {} : { scope }),
      scratchDir: join(this.#o.scratchDir, scope?.principal ?? "probe"),
      timers: this.#timers,
      clock: this.#clock,
      log: this.#log,
      idleTimeoutMs: this.#settings.idleTimeoutSecs * 1000,
      ...(e.grants.view === undefined ? {} : { workspacePaths: e.grants.view }),
      ...(this.#o.restart === undefined ? {} : { restart: this.#o.restart }),
      ...(this.#o.env === undefined ? {} : { env: this.#o.env }),
      ...(this.#o.launcher.sandboxed ? {} : {
        unsandboxedWarning: `Starting MCP server WITHOUT a sandbox (${
          this.#o.noSandboxReason ?? "no namespace sandbox is available"
        }; allow_unsandboxed = true): it sees the real workspace and its writes are not undoable`,
      }),
      onTools: (tools) => this.#setTools(e, tools),
      // `caller` is the scope the calls in flight captured, not the instance's current one: a
      // request is relayed to the session whose call made it, never to one that came later.
      onElicit: (params, signal, caller): Promise<ElicitResult> => {
        const elicitor = this.#o.elicitor;
        if (elicitor === undefined || caller === undefined) {
          return Promise.resolve({ action: "decline" });
        }
        return relayElicitation(params, elicitor, {
          principal: caller.principal,
          session: caller.session,
          capsule: `mcp:${name}`,
          signal,
          expiresAt: this.#clock.now() + this.#settings.callTimeoutSecs * 1000,
        });
      },
    });
  }

  async #probe(e: Entry): Promise<void> {
    if (e.probing !== undefined) return await e.probing;
    e.probing = (async () => {
      let probe: McpServerInstance | undefined;
      try {
        probe = this.#newInstance(e, undefined);
        const c = await probe.catalog();
        const info = probe.info();
        e.resources = c.resources.length;
        e.prompts = c.prompts.length;
        e.serverInfo = info.serverInfo;
        e.protocolVersion = info.protocolVersion;
        e.target = info.target;
        e.state = "ready";
        e.error = undefined;
        e.code = undefined;
        this.#bindDescribe(e);
      } catch (err) {
        e.target = probe?.info().target;
        e.state = "refused";
        e.error = (err as Error)?.message ?? String(err);
        e.code = err instanceof McpError ? err.code : "INTERNAL";
        this.#setTools(e, []);
        this.#log({ level: "error", server: e.spec.name, message: e.error });
      } finally {
        await probe?.close();
        e.probing = undefined;
      }
    })();
    return await e.probing;
  }

  #capsuleOf(e: Entry): string {
    return e.owner.capsule ?? `mcp:${e.spec.name}`;
  }

  #setTools(e: Entry, tools: readonly Tool[]): void {
    if (this.#entries.get(e.id) !== e) return; // removed meanwhile
    const next = new Map<string, McpToolInfo>();
    for (const t of tools) {
      const name = mcpToolName(e.spec.name, t.name);
      if (next.has(name)) continue;
      next.set(name, {
        name,
        mcpName: t.name,
        server: e.spec.name,
        capsule: this.#capsuleOf(e),
        description: t.description ?? t.title ?? "",
        input_schema: (t.inputSchema ?? { type: "object" }) as unknown as JsonValue,
        readOnly: t.annotations?.readOnlyHint === true,
      });
    }
    let changed = next.size !== e.tools.size;
    for (const [name, bound] of e.tools) {
      const info = next.get(name);
      if (info === undefined) {
        bound.sub.close();
        e.tools.delete(name);
        changed = true;
      } else if (JSON.stringify(info) !== JSON.stringify(bound.info)) {
        e.tools.set(name, { info, sub: bound.sub });
        changed = true;
      }
    }
    const bus = this.#o.bus;
    for (const [name, info] of next) {
      if (e.tools.has(name)) continue;
      const sub = bus.subscribe(`tool.v1.execute.${name}`, {
        ctx: { principal: KERNEL_CTX.principal, source: { kind: "kernel", name: `mcp:${e.id}` } },
        ...(e.owner.principal === undefined ? {} : { principal: principalId(e.owner.principal) }),
      });
      e.tools.set(name, { info, sub });
      void pump(sub, (msg) => this.#serve(e, name, msg));
      changed = true;
    }
    if (changed && this.#started) {
      bus.publish(TOOLS_CHANGED_TOPIC, {
        server: e.spec.name,
        capsule: this.#capsuleOf(e),
        tools: [...e.tools.keys()],
      }, { ctx: KERNEL_CTX }).catch(() => {});
    }
  }

  #bindDescribe(e: Entry): void {
    if (e.describe !== undefined) return;
    const sub = this.#o.bus.subscribe(DESCRIBE_TOPIC, {
      ctx: { principal: KERNEL_CTX.principal, source: { kind: "kernel", name: `mcp:${e.id}` } },
      ...(e.owner.principal === undefined ? {} : { principal: principalId(e.owner.principal) }),
    });
    e.describe = sub;
    void pump(sub, async (msg) => {
      if (!this.#serves(e, msg) || e.tools.size === 0) return;
      const scope = callScope(msg);
      await this.#o.bus.publish(
        `tool.v1.response.describe.${e.owner.capsule ?? e.spec.name}`,
        {
          capsule: this.#capsuleOf(e),
          server: e.spec.name,
          tools: [...e.tools.values()].map((t) => ({
            name: t.info.name,
            description: t.info.description,
            input_schema: t.info.input_schema,
          })),
          ...(msg.request_id === undefined ? {} : { request_id: msg.request_id }),
          ...(scope.session === undefined ? {} : { session: scope.session }),
        },
        { ctx: { principal: msg.principal, source: SOURCE }, request_id: msg.request_id },
      );
    });
  }

  #serves(e: Entry, msg: BusMessage): boolean {
    if (e.owner.principal !== undefined && msg.principal !== e.owner.principal) return false;
    if (e.owner.workspaceId !== undefined) {
      return callScope(msg).workspaceId === e.owner.workspaceId;
    }
    return true;
  }

  async #serve(e: Entry, busName: string, msg: BusMessage): Promise<void> {
    if (!this.#serves(e, msg)) return;
    const bound = e.tools.get(busName);
    if (bound === undefined) return;
    const requestId = requestIdOf(msg);
    const body = msg.payload.kind === "json" ? msg.payload.value : undefined;
    const keys = [`${msg.principal}\0${requestId}`];
    if (isObject(body) && typeof body.call_id === "string") {
      keys.push(`${msg.principal}\0call:${body.call_id}`);
    }
    const abort = new AbortController();
    for (const k of keys) this.#inFlight.set(k, abort);
    let payload: Record<string, JsonValue>;
    const progress = { count: 0 };
    try {
      const result = await this.#call(e, bound.info, msg, requestId, {
        signal: abort.signal,
        progress,
      });
      payload = resultPayload(result);
    } catch (err) {
      const code = err instanceof McpError ? err.code : "INTERNAL";
      const message = (err as Error)?.message ?? String(err);
      if (!(err instanceof McpError)) {
        this.#log({ level: "error", server: e.spec.name, message: `Tool call failed: ${message}` });
      }
      payload = { is_error: true, content: message, error: { code, message } };
    } finally {
      for (const k of keys) this.#inFlight.delete(k);
    }
    const out: Record<string, JsonValue> = {
      request_id: requestId,
      tool: busName,
      capsule: this.#capsuleOf(e),
      server: e.spec.name,
      ...payload,
      ...(progress.count === 0 ? {} : { progress_count: progress.count }),
    };
    if (isObject(body)) {
      for (const k of ["call_id", "session", "workspace_id"]) {
        if (body[k] !== undefined) out[k] = body[k];
      }
    }
    try {
      await this.#o.bus.publish(`tool.v1.execute.${busName}.result`, out, {
        ctx: { principal: msg.principal, source: SOURCE },
        request_id: requestId,
      });
    } catch (err) {
      this.#log({
        level: "error",
        server: e.spec.name,
        message: `Cannot publish a tool result: ${(err as Error)?.message ?? err}`,
      });
    }
  }

  async #call(
    e: Entry,
    tool: McpToolInfo,
    msg: BusMessage,
    requestId: string,
    call: { signal: AbortSignal; progress: { count: number } },
  ): Promise<CallToolResult> {
    const signal = call.signal;
    const spec = e.spec;
    const principal = msg.principal;
    const { session, workspaceId } = callScope(msg);
    const args = callArguments(msg);
    let scope: McpScope | undefined;
    if (session !== undefined && workspaceId !== undefined) {
      const running = e.instances.get(`${principal}\0${workspaceId}`)?.scope;
      scope = running?.session === session
        ? running
        : await this.#o.resolveScope({ principal, session, workspaceId });
    }
    const granted = e.grants.workspace;
    const needsWorkspace = granted &&
      [...spec.args, ...Object.values(spec.env)].some((a) => a.includes("${workspace}"));
    if (needsWorkspace && scope === undefined) {
      throw new McpError(
        McpCode.MCP_CALL_INVALID,
        `Tool "${tool.name}" needs a session bound to a workspace: its server "${spec.name}" works on the workspace`,
        { data: { tool: tool.name, server: spec.name, field: "workspace_id" } },
      );
    }
    const securityTool = securityToolId(spec.name, tool.name);
    const sessionId = session ?? "none";
    const workspace = workspaceId ?? "none";
    const found = argumentPaths(args);
    let paths: string[] = [];
    let inside = false;
    if (found.length > 0) {
      const verdict = await checkPaths(found, {
        workspaceRoot: scope?.workspaceRoot ?? "/nonexistent/astrid-no-workspace",
        ...(scope === undefined ? {} : { overlay: scope.overlay }),
        grants: tool.readOnly ? e.grants.read : e.grants.write,
        ...(this.#serverHome === undefined ? {} : { serverHome: this.#serverHome }),
        ...(this.#o.roots === undefined ? {} : { roots: this.#o.roots(principal) }),
      });
      if (!verdict.allowed) {
        const grant = tool.readOnly ? "fs_read" : "fs_write";
        const reason =
          `MCP tool "${tool.name}" may not touch "${verdict.path}" (argument ${verdict.argument}): ${verdict.reason}; its ${
            e.owner.capsule === undefined ? "servers.toml entry" : `capsule "${e.owner.capsule}"`
          } grants ${grant} = ${JSON.stringify(tool.readOnly ? e.grants.read : e.grants.write)}`;
        await this.#o.audit.append({
          principal,
          action: "tool.execute",
          resource: `tool:${securityTool}`,
          decision: "denied",
          reason,
          layer: "manifest",
          rule: grant,
          decider: "manifest",
          session: sessionId,
          details: JSON.stringify({
            workspace,
            tool: securityTool,
            argument: verdict.argument,
            path: verdict.path,
            native: true,
          }),
        });
        throw new McpError(McpCode.MCP_PATH_DENIED, reason, {
          data: {
            tool: tool.name,
            path: verdict.path,
            argument: verdict.argument,
            server: spec.name,
          },
        });
      }
      paths = verdict.paths;
      inside = verdict.inside;
    }
    const auth = await this.#o.security.authorize({
      kind: "tool.execute",
      principal,
      session: sessionId,
      workspace,
      tool: securityTool,
      native: true,
      ...(paths.length > 0 ? { paths, insideWorkspace: inside } : {}),
    }, { signal });
    if (!auth.allowed) {
      throw new McpError(McpCode.MCP_CALL_DENIED, auth.reason, {
        data: { tool: tool.name, server: spec.name, layer: auth.layer, rule: auth.rule },
      });
    }
    try {
      // A server its grants give no workspace path runs over an empty directory, not the overlay.
      const placed = granted && scope !== undefined
        ? {
          principal,
          workspaceId: workspaceId!,
          session: session!,
          workspaceRoot: scope.workspaceRoot,
          overlay: scope.overlay,
        }
        : undefined;
      const instance = this.#instanceFor(e, principal, workspaceId, placed);
      const topic = `tool.v1.execute.${tool.name}.progress`;
      const body = msg.payload.kind === "json" ? msg.payload.value : undefined;
      const callId = isObject(body) && typeof body.call_id === "string" ? body.call_id : undefined;
      const result = await instance.call(tool.mcpName, args, {
        ...(placed === undefined ? {} : { scope: placed }),
        signal,
        timeoutMs: this.#settings.callTimeoutSecs * 1000,
        onProgress: (p) => {
          call.progress.count++;
          this.#o.bus.publish(topic, {
            request_id: requestId,
            progress: p.progress,
            ...(p.total === undefined ? {} : { total: p.total }),
            ...(p.message === undefined ? {} : { message: p.message }),
            ...(callId === undefined ? {} : { call_id: callId }),
            ...(session === undefined ? {} : { session }),
          }, { ctx: { principal, source: SOURCE }, request_id: requestId }).catch(() => {});
        },
      });
      await auth.reservation?.commit(0);
      return result;
    } catch (err) {
      auth.reservation?.release();
      throw err;
    }
  }

  /**
   * The instance of (server, principal, workspace) — DESIGN §6a: one per (principal,
   * workspace), moved between the sessions' overlays by its calls — or of (server, principal)
   * for a server its grants give no workspace path.
   */
  #instanceFor(
    e: Entry,
    principal: string,
    workspaceId: string | undefined,
    scope: InstanceScope | undefined,
  ): McpServerInstance {
    const key = scope === undefined ? `${principal}\0\0` : `${principal}\0${workspaceId}`;
    let inst = e.instances.get(key);
    if (inst === undefined || inst.state === "closed") {
      inst = this.#newInstance(e, scope);
      e.instances.set(key, inst);
    }
    return inst;
  }

  /** Stops the instances working for a session whose last frontend left (writes folded). */
  async #sessionEnded(msg: BusMessage): Promise<void> {
    if (msg.source.kind !== "kernel") return;
    const session = callScope(msg).session;
    if (session !== undefined) await this.settleSession(msg.principal, session);
  }

  #cancel(msg: BusMessage): void {
    const body = msg.payload.kind === "json" ? msg.payload.value : undefined;
    if (!isObject(body)) return;
    const key = typeof body.request_id === "string"
      ? `${msg.principal}\0${body.request_id}`
      : typeof body.call_id === "string"
      ? `${msg.principal}\0call:${body.call_id}`
      : undefined;
    if (key !== undefined) this.#inFlight.get(key)?.abort(new Error("Cancelled by the caller"));
  }

  async #management(request: string, msg: BusMessage): Promise<void> {
    const body = msg.payload.kind === "json" ? msg.payload.value : undefined;
    let reply: JsonValue;
    try {
      if (request === "servers") {
        reply = { ok: true, result: this.servers() as unknown as JsonValue };
      } else {
        const server = isObject(body) && typeof body.server === "string" ? body.server : undefined;
        await this.#o.audit.append({
          principal: msg.principal,
          action: "mcp.reload",
          resource: `mcp:${server ?? "*"}`,
          decision: "allowed",
          reason: `Reload of MCP server ${
            server === undefined ? "(all)" : `"${server}"`
          } requested`,
          layer: "management",
          rule: "mcp.reload",
          decider: "operator",
          details: JSON.stringify({ via: `${msg.source.kind}:${msg.source.name}` }),
        });
        reply = { ok: true, result: (await this.reload(server)) as unknown as JsonValue };
      }
    } catch (err) {
      const code = err instanceof McpError ? err.code : "INTERNAL";
      reply = { ok: false, error: { code, message: (err as Error)?.message ?? String(err) } };
    }
    if (msg.reply_to === undefined) return;
    await this.#o.bus.publish(msg.reply_to, reply, {
      ctx: { principal: msg.principal, source: SOURCE },
      request_id: msg.request_id,
    }).catch(() => {});
  }
}

/** The grants of a spec, computed once. */
function grantsOf(spec: McpServerSpec): Entry["grants"] {
  const read = [...new Set([...spec.fsRead, ...spec.fsWrite])];
  const prefixes = parseGrants(read).filter((g) => g.scheme === "workspace").map((g) => {
    // A glob segment and what follows it widen to the literal directory before it.
    const segments = g.prefix === "" ? [] : g.prefix.split("/");
    const glob = segments.findIndex((x) => /[*?[\]{}]/.test(x));
    return (glob < 0 ? segments : segments.slice(0, glob)).join("/");
  });
  return {
    read,
    write: [...spec.fsWrite],
    workspace: prefixes.length > 0,
    ...(prefixes.length === 0 || prefixes.includes("") ? {} : { view: [...new Set(prefixes)] }),
  };
}

/** True when two owners' servers may serve a call of the same principal and workspace. */
function overlaps(a: McpOwner, b: McpOwner): boolean {
  if (a.principal !== undefined && b.principal !== undefined && a.principal !== b.principal) {
    return false;
  }
  if (a.workspaceId !== undefined && b.workspaceId !== undefined) {
    return a.workspaceId === b.workspaceId;
  }
  return true;
}

function isObject(v: unknown): v is { readonly [key: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function callScope(msg: BusMessage): { session?: string; workspaceId?: string } {
  const v = msg.payload.kind === "json" ? msg.payload.value : undefined;
  if (!isObject(v)) return {};
  return {
    ...(typeof v.session === "string" && v.session !== "" ? { session: v.session } : {}),
    ...(typeof v.workspace_id === "string" && v.workspace_id !== ""
      ? { workspaceId: v.workspace_id }
      : {}),
  };
}

function callArguments(msg: BusMessage): Record<string, unknown> {
  const v = msg.payload.kind === "json" ? msg.payload.value : undefined;
  if (!isObject(v)) return {};
  if ("arguments" in v) return isObject(v.arguments) ? { ...v.arguments } : {};
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!CALL_KEYS.has(k)) out[k] = x;
  return out;
}

function requestIdOf(msg: BusMessage): string {
  if (msg.request_id !== undefined) return msg.request_id;
  const v = msg.payload.kind === "json" ? msg.payload.value : undefined;
  if (isObject(v) && typeof v.request_id === "string" && v.request_id !== "") return v.request_id;
  return msg.id;
}

/** The text of an MCP result's content blocks, one per line (non-text blocks summarized). */
export function resultText(result: CallToolResult): string {
  const parts: string[] = [];
  for (const block of result.content ?? []) {
    const b = block as { type: string; text?: string; mimeType?: string; data?: string };
    if (b.type === "text") parts.push(b.text ?? "");
    else if (b.type === "resource_link") parts.push(`[resource ${(b as { uri?: string }).uri}]`);
    else if (b.type === "resource") {
      const r = (b as { resource?: { uri?: string; text?: string } }).resource;
      parts.push(r?.text ?? `[resource ${r?.uri}]`);
    } else {parts.push(
        `[${b.type} ${b.mimeType ?? ""} ${Math.floor((b.data?.length ?? 0) * 3 / 4)} bytes]`,
      );}
  }
  if (parts.length === 0 && result.structuredContent !== undefined) {
    return JSON.stringify(result.structuredContent);
  }
  return parts.join("\n");
}

function resultPayload(result: CallToolResult): Record<string, JsonValue> {
  const text = resultText(result);
  const mcp: Record<string, JsonValue> = {
    content: (result.content ?? []) as unknown as JsonValue,
  };
  if (result.structuredContent !== undefined) {
    mcp.structured_content = result.structuredContent as unknown as JsonValue;
  }
  if (result.isError === true) {
    return {
      is_error: true,
      content: text,
      error: { code: "TOOL_ERROR", message: text },
      mcp,
    };
  }
  return { is_error: false, content: text, mcp };
}

async function pump(sub: RoutedSubscription, handle: (msg: BusMessage) => unknown): Promise<void> {
  for (;;) {
    let msg: BusMessage;
    try {
      msg = await sub.recv();
    } catch {
      return; // closed
    }
    try {
      void Promise.resolve(handle(msg)).catch(() => {});
    } catch {
      // A handler never stops the pump.
    }
  }
}
