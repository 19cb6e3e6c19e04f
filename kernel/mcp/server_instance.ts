/**
 * One running copy of one MCP server for one (principal, workspace) — DESIGN §6a — working
 * on the overlay of one session of it at a time: started on first use, moved to another
 * session's overlay when a call of that session comes (stopped, its writes folded, started
 * again), restarted with backoff when it dies, stopped when idle.
 *
 * Life cycle:
 * - `ensure()` starts it when stopped: the hash check (`server_hash.ts`), then the launcher —
 *   in the namespace sandbox, over the session overlay mounted at the workspace root, its
 *   writes folded into the session when it exits — then `initialize` and `tools/list`
 *   (reported to `onTools`). Calls arriving meanwhile wait for the same start.
 * - When the process dies on its own, every request in flight fails (`MCP_SERVER_EXITED`) and
 *   a restart is scheduled after `base × 2^(n-1)` ms (n crashes in a row, capped at `maxMs`);
 *   a server that ran `stableMs` without dying counts from zero again. After `maxFailures`
 *   crashes in a row it is `failed` (`MCP_SERVER_FAILED`) until {@link McpServerInstance.reset}
 *   (reload).
 * - It stops after `idleTimeoutMs` without a call; and, when the launcher holds the session
 *   (the sandbox: the session's VFS writes, commit and discard wait while it runs), as soon as
 *   it is idle and anything waits for the session — checked every {@link YIELD_CHECK_MS}.
 * - `stop()` (idle, yield, settle, reload, shutdown) closes stdin and waits (SIGTERM, then
 *   SIGKILL); the sandbox folds the server's writes into the session as it exits.
 *
 * Sessions take turns (`call()` with a scope), in both launchers:
 * - **One session at a time.** Calls of the session it works on go straight in; a call of
 *   another session waits until the calls in flight have ended, then the instance switches
 *   (the sandbox: stopped, writes folded, started again over the new overlay; unsandboxed:
 *   nothing restarts, the scope just moves). So every call in flight belongs to one session,
 *   and whatever the server sends during them (elicitation, log lines) is attributed to the
 *   scope captured by those calls — never to a session that came later.
 * - **FIFO once a switch is pending.** Calls that cannot go in queue as tickets, in arrival
 *   order; while a ticket of another session waits, later calls of the current session queue
 *   behind it (no starvation: the waiting session runs after the calls admitted before it).
 * - **Batching (against ping-pong).** When a switch completes, every queued call of the new
 *   session goes in together; the instance switches back only once they have ended. Two
 *   alternating busy sessions cost one switch per batch, not per call.
 * - **No deadlock.** A call in flight may wait for a later call of its own session (a `slow`
 *   tool released by another tool). If the pending switch has not happened after
 *   {@link SWITCH_GRACE_MS} (`switchGraceMs`), the current session's calls queued behind it go
 *   in — once per pending switch, so the wait of the other session stays bounded.
 *
 * @module
 */
import { join } from "node:path";
import type { Clock } from "../clock.ts";
import type { Timers } from "../events/mod.ts";
import type { OverlayVfs } from "../vfs/mod.ts";
import { McpCode, McpError } from "./errors.ts";
import { type McpLauncher, serverEnv, visibleRoots } from "./launcher.ts";
import {
  type CallOptions,
  type CallToolResult,
  type ElicitRequest,
  type ElicitResult,
  McpConnection,
  type McpLogLine,
  type Prompt,
  type Resource,
  type Tool,
} from "./mcp_connection.ts";
import { checkServerHash, findProgram, hashFile } from "./server_hash.ts";
import { expandPlaceholders, type McpServerSpec } from "./server_spec.ts";

/** Restart backoff. */
export interface RestartPolicy {
  /** Delay before the first restart, ms (default 250). */
  readonly baseMs: number;
  /** Longest delay, ms (default 30,000). */
  readonly maxMs: number;
  /** Crashes in a row after which restarts stop (default 5). */
  readonly maxFailures: number;
  /** A run this long resets the crash count, ms (default 60,000). */
  readonly stableMs: number;
}

/** The default {@link RestartPolicy}. */
export const DEFAULT_RESTART: RestartPolicy = Object.freeze({
  baseMs: 250,
  maxMs: 30_000,
  maxFailures: 5,
  stableMs: 60_000,
});

/** How often a server holding its session checks whether something waits for it, ms. */
export const YIELD_CHECK_MS = 200;

/**
 * How long a pending session switch holds back later calls of the current session before it lets
 * them in (once per pending switch: a call in flight may be waiting for one of them), ms.
 */
export const SWITCH_GRACE_MS = 2_000;

/** The delay before restart number `failures` (1-based). */
export function restartDelay(failures: number, policy: RestartPolicy = DEFAULT_RESTART): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
}

/** Where an instance runs: the session overlay it sees, or none (the catalog probe). */
export interface InstanceScope {
  /** The acting principal. */
  readonly principal: string;
  /** The workspace id. */
  readonly workspaceId: string;
  /** The session. */
  readonly session: string;
  /** The workspace root (real path). */
  readonly workspaceRoot: string;
  /** The session's overlay. */
  readonly overlay: OverlayVfs;
}

function sameSession(a: InstanceScope | undefined, b: InstanceScope): boolean {
  return a !== undefined && a.session === b.session && a.workspaceId === b.workspaceId &&
    a.principal === b.principal;
}

function sessionKey(s: InstanceScope): string {
  return `${s.principal}\0${s.workspaceId}\0${s.session}`;
}

/** A call waiting for its session's turn. */
interface Ticket {
  readonly scope: InstanceScope;
  /** Counts the call in (synchronously, with its scope) and lets it run. */
  readonly admit: () => void;
}

/** One line for the capsule log. */
export interface McpLogEntry {
  /** `debug`, `info`, `warn` or `error`. */
  readonly level: "debug" | "info" | "warn" | "error";
  /** The server. */
  readonly server: string;
  /** What happened. */
  readonly message: string;
  /** Detail. */
  readonly fields?: Record<string, unknown>;
}

/** Receives the engine's and the servers' log lines. */
export type McpLogSink = (entry: McpLogEntry) => void;

/** Options of {@link McpServerInstance}. */
export interface McpServerInstanceOptions {
  /** The server. */
  spec: McpServerSpec;
  /** Starts its process. */
  launcher: McpLauncher;
  /** The overlay it works on; absent for a probe (`${workspace}` is then an empty dir). */
  scope?: InstanceScope;
  /** A private directory for upper, work and probe dirs (created). */
  scratchDir: string;
  /** Schedules restarts and the idle stop. */
  timers: Timers;
  /** The time source (stable-run detection). */
  clock: Clock;
  /** Receives log lines (server stderr, `notifications/message`, life cycle). */
  log: McpLogSink;
  /** Stop after this long without a call, ms; 0 never. */
  idleTimeoutMs: number;
  /** Restart backoff (default {@link DEFAULT_RESTART}). */
  restart?: RestartPolicy;
  /** Receives each tool list (after start and after `list_changed`). */
  onTools?: (tools: Tool[]) => void;
  /**
   * Relays elicitation requests to the user of `caller`: the scope captured by the calls in
   * flight when the request came (undefined when none, or when they carry no scope).
   */
  onElicit?: (
    params: ElicitRequest["params"],
    signal: AbortSignal,
    caller: InstanceScope | undefined,
  ) => Promise<ElicitResult>;
  /** The environment source (default `Deno.env`). */
  env?: { get(name: string): string | undefined };
  /** Host paths the server must read (its script's package, its program). */
  readOnly?: readonly string[];
  /** Let the server reach the network. */
  network?: boolean;
  /** The workspace paths its grants name, when narrower than the workspace (see `McpLaunch`). */
  workspacePaths?: readonly string[];
  /** Logged as a warning at every start (the launcher is not a sandbox). */
  unsandboxedWarning?: string;
  /** See {@link SWITCH_GRACE_MS} (the default), ms. */
  switchGraceMs?: number;
}

/** The state of an instance. */
export type InstanceState = "stopped" | "starting" | "running" | "backoff" | "failed" | "closed";

/** What a start reported. */
export interface InstanceInfo {
  /** The state. */
  readonly state: InstanceState;
  /** The process id while running. */
  readonly pid?: number;
  /** The agreed protocol version. */
  readonly protocolVersion?: string;
  /** The server's own name and version. */
  readonly serverInfo?: { name: string; version: string };
  /** Crashes in a row. */
  readonly failures: number;
  /** Why it failed last. */
  readonly lastError?: string;
  /** What its hash covers and the hash found at its last start (none for a launcher). */
  readonly target?: { readonly kind: string; readonly file: string; readonly hash?: string };
}

const LOG_LEVELS: Record<string, McpLogEntry["level"]> = {
  debug: "debug",
  info: "info",
  notice: "info",
  warning: "warn",
  error: "error",
  critical: "error",
  alert: "error",
  emergency: "error",
};

/** One supervised copy of a server; see the module doc. */
export class McpServerInstance {
  readonly #o: McpServerInstanceOptions;
  readonly #policy: RestartPolicy;
  #state: InstanceState = "stopped";
  #conn: McpConnection | undefined;
  #starting: Promise<McpConnection> | undefined;
  #restartWaiters: { resolve: (c: McpConnection) => void; reject: (e: unknown) => void }[] = [];
  #restartTimer: unknown;
  #idleTimer: unknown;
  #inFlight = 0;
  #failures = 0;
  #startedAt = 0;
  #lastUsed = 0;
  #lastError: string | undefined;
  #probeDir: string | undefined;
  #target: InstanceInfo["target"];
  #yieldTimer: unknown;
  #stopping: Promise<void> | undefined;
  #scope: InstanceScope | undefined;
  #switching: Promise<void> | undefined;
  /** Calls waiting for their session's turn, in arrival order. */
  #queue: Ticket[] = [];
  /** The scopes the calls in flight captured, by session, with how many calls carry each. */
  readonly #callers = new Map<string, { scope: InstanceScope; calls: number }>();
  #graceTimer: unknown;
  /** The waiting ticket the grace was given for (once per pending switch). */
  #graceFor: Ticket | undefined;

  /** Creates a stopped instance. */
  constructor(options: McpServerInstanceOptions) {
    this.#o = options;
    this.#policy = options.restart ?? DEFAULT_RESTART;
    this.#scope = options.scope;
  }

  /** The server's spec. */
  get spec(): McpServerSpec {
    return this.#o.spec;
  }

  /** The overlay it works on, if any. */
  get scope(): InstanceScope | undefined {
    return this.#scope;
  }

  /** The current state. */
  get state(): InstanceState {
    return this.#state;
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Calls waiting for their session's turn. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * The scope the calls in flight captured (what the server says now is theirs), or undefined
   * when no call with a scope runs.
   */
  get caller(): InstanceScope | undefined {
    if (this.#callers.size !== 1) return undefined; // none; never two (one session at a time)
    return this.#callers.values().next().value?.scope;
  }

  /** A snapshot for status and tests. */
  info(): InstanceInfo {
    const c = this.#conn;
    return {
      state: this.#state,
      ...(c === undefined || this.#state !== "running" ? {} : {
        pid: c.pid,
        ...(c.protocolVersion === undefined ? {} : { protocolVersion: c.protocolVersion }),
        ...(c.serverInfo === undefined ? {} : { serverInfo: c.serverInfo }),
      }),
      failures: this.#failures,
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
      ...(this.#target === undefined ? {} : { target: this.#target }),
    };
  }

  /** The live connection, starting the server (or waiting for a restart) when needed. */
  ensure(): Promise<McpConnection> {
    switch (this.#state) {
      case "running":
        return Promise.resolve(this.#conn!);
      case "starting":
        return this.#starting!;
      case "backoff":
        return new Promise((resolve, reject) => this.#restartWaiters.push({ resolve, reject }));
      case "failed":
        return Promise.reject(this.#failedError());
      case "closed":
        return Promise.reject(
          new McpError(McpCode.MCP_CLOSED, `The MCP engine is shut down`, {
            data: { server: this.spec.name },
          }),
        );
      case "stopped":
        if (this.#stopping !== undefined) {
          return this.#stopping.then(() => this.ensure());
        }
        return this.#start();
    }
  }

  /**
   * Calls a tool on the running server (starting it first); see {@link CallOptions}. With
   * `scope`, the call runs over that session's overlay and waits for its session's turn (see the
   * module doc): when the instance works on another session's, it first waits for that session's
   * calls in flight, then switches. Aborting `signal` while it waits rejects with
   * `MCP_CANCELLED`.
   */
  async call(
    tool: string,
    args: Record<string, unknown>,
    options: CallOptions & { scope?: InstanceScope } = {},
  ): Promise<CallToolResult> {
    const scope = options.scope;
    await this.#enter(scope, options.signal);
    try {
      const conn = await this.ensure();
      return await conn.callTool(tool, args, options);
    } finally {
      this.#leave(scope);
      this.#used();
    }
  }

  /**
   * Counts a call in once its session has its turn (see the module doc). The count is taken
   * synchronously with the check (or by {@link #pump}), so no switch can slip in between.
   */
  #enter(scope: InstanceScope | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (scope === undefined) {
      this.#inFlight++; // no overlay: nothing to switch (such an instance never gets a scope)
      return Promise.resolve();
    }
    if (
      this.#queue.length === 0 && this.#switching === undefined && sameSession(this.#scope, scope)
    ) {
      this.#admit(scope);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.#queue.indexOf(ticket);
        if (at < 0) return;
        this.#queue.splice(at, 1);
        reject(
          new McpError(
            McpCode.MCP_CANCELLED,
            `Cancelled a call waiting for MCP server "${this.spec.name}"`,
            { data: { server: this.spec.name, method: "tools/call" } },
          ),
        );
        this.#pump(); // it may have been the ticket everything else waited behind
      };
      const ticket: Ticket = {
        scope,
        admit: () => {
          signal?.removeEventListener("abort", onAbort);
          this.#admit(scope);
          resolve();
        },
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(ticket);
      this.#pump();
    });
  }

  #admit(scope: InstanceScope): void {
    this.#inFlight++;
    const key = sessionKey(scope);
    const c = this.#callers.get(key);
    if (c === undefined) this.#callers.set(key, { scope, calls: 1 });
    else c.calls++;
  }

  #leave(scope: InstanceScope | undefined): void {
    this.#inFlight--;
    if (scope !== undefined) {
      const key = sessionKey(scope);
      const c = this.#callers.get(key);
      if (c !== undefined && --c.calls === 0) this.#callers.delete(key);
    }
    if (this.#inFlight === 0) this.#pump();
  }

  /**
   * Lets waiting calls in, in order: the head ticket goes in when it is of the current session;
   * of another, the instance switches once no call runs (then the new session's queued calls go
   * in together), and until then everything behind the head waits — see the module doc.
   */
  #pump(): void {
    while (this.#switching === undefined && this.#queue.length > 0) {
      const head = this.#queue[0];
      if (sameSession(this.#scope, head.scope)) {
        this.#queue.shift();
        head.admit();
        continue;
      }
      if (this.#inFlight > 0) {
        this.#graceAfter(head);
        return;
      }
      this.#clearGrace();
      if (!this.#o.launcher.holdsSession) {
        // Nothing mounted (an unsandboxed server sees the workspace itself): no restart.
        this.#moveTo(head.scope);
        continue;
      }
      this.#switching = this.#switchTo(head.scope).finally(() => {
        this.#switching = undefined;
        this.#pump();
      });
      return;
    }
    if (this.#queue.length === 0) this.#clearGrace();
  }

  async #switchTo(scope: InstanceScope): Promise<void> {
    try {
      await this.stop("session switch");
    } catch (err) {
      this.#log("warn", `Stopping for a session switch failed: ${(err as Error)?.message ?? err}`);
    }
    this.#moveTo(scope);
  }

  /** Works on `scope`'s session from now on and lets in every call of it that waits (batch). */
  #moveTo(scope: InstanceScope): void {
    this.#scope = scope;
    const rest: Ticket[] = [];
    const batch: Ticket[] = [];
    for (const t of this.#queue) (sameSession(scope, t.scope) ? batch : rest).push(t);
    this.#queue = rest;
    for (const t of batch) t.admit();
  }

  /**
   * Gives the calls in flight {@link SWITCH_GRACE_MS} to end before `head`'s switch; after it,
   * the current session's calls queued behind `head` go in (one of them may be what a call in
   * flight waits for). Once per pending switch: later ones wait.
   */
  #graceAfter(head: Ticket): void {
    if (this.#graceFor === head) return;
    this.#clearGrace();
    this.#graceFor = head;
    this.#graceTimer = this.#o.timers.setTimeout(() => {
      this.#graceTimer = undefined;
      if (this.#queue[0] !== head || this.#switching !== undefined || this.#inFlight === 0) return;
      const current = this.#scope;
      const held = this.#queue.filter((t) => sameSession(current, t.scope));
      if (held.length === 0) return;
      this.#queue = this.#queue.filter((t) => !sameSession(current, t.scope));
      this.#log("info", "Session switch still waits: letting in the current session's calls", {
        session: current?.session,
        waiting: head.scope.session,
        calls: held.length,
      });
      for (const t of held) t.admit();
    }, this.#o.switchGraceMs ?? SWITCH_GRACE_MS);
  }

  #clearGrace(): void {
    this.#graceFor = undefined;
    if (this.#graceTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
    }
  }

  /**
   * Stops the instance if it works on `session`'s overlay (its writes folded into it) and
   * forgets that overlay (the session ended); its crash count stays. False when it works on
   * another session's.
   */
  async release(session: string): Promise<boolean> {
    await this.#switching?.catch(() => {});
    if (this.#scope?.session !== session) return false;
    await this.stop("session ended");
    if (this.#scope?.session === session && this.#inFlight === 0) {
      this.#scope = undefined;
      this.#pump();
    }
    return true;
  }

  /** Resources and prompts the server lists (starting it first). */
  async catalog(): Promise<{ resources: Resource[]; prompts: Prompt[] }> {
    const conn = await this.ensure();
    const [resources, prompts] = await Promise.all([conn.listResources(), conn.listPrompts()]);
    return { resources, prompts };
  }

  /** Pings the running server (starting it first). */
  async ping(): Promise<void> {
    await (await this.ensure()).ping();
  }

  /** Stops the process (if any), folds its writes and removes its dirs; it may start again. */
  stop(reason = "stopped"): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#stopping = this.#stop(reason).finally(() => (this.#stopping = undefined));
    return this.#stopping;
  }

  /** Stops it and forgets its crashes (reload): the next call starts it afresh. */
  async reset(): Promise<void> {
    await this.stop("reload");
    this.#failures = 0;
    this.#lastError = undefined;
    if (this.#state === "failed") this.#state = "stopped";
  }

  /** Stops it for good (shutdown). */
  async close(): Promise<void> {
    this.#clearGrace();
    await this.stop("shutdown");
    this.#state = "closed";
  }

  async #stop(reason: string): Promise<void> {
    this.#clearIdle();
    if (this.#restartTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
    }
    const waiters = this.#restartWaiters;
    this.#restartWaiters = [];
    for (const w of waiters) {
      w.reject(
        new McpError(McpCode.MCP_SERVER_EXITED, `MCP server "${this.spec.name}" was ${reason}`, {
          data: { server: this.spec.name },
        }),
      );
    }
    if (this.#starting !== undefined) {
      try {
        await this.#starting;
      } catch {
        // It did not start; nothing to close.
      }
    }
    const conn = this.#conn;
    this.#conn = undefined;
    if (this.#state === "running" || this.#state === "backoff" || this.#state === "starting") {
      this.#state = "stopped";
    }
    if (conn !== undefined) {
      this.#log("info", `Stopping MCP server (${reason})`, { pid: conn.pid });
      await conn.close();
    }
    await this.#cleanup();
  }

  #start(): Promise<McpConnection> {
    this.#state = "starting";
    const starting = this.#launch().then(
      (conn) => {
        this.#starting = undefined;
        if (this.#state !== "starting") {
          void conn.close();
          throw new McpError(McpCode.MCP_SERVER_EXITED, `MCP server "${this.spec.name}" stopped`, {
            data: { server: this.spec.name },
          });
        }
        this.#conn = conn;
        this.#state = "running";
        this.#startedAt = this.#o.clock.now();
        this.#lastUsed = this.#startedAt;
        this.#armIdle();
        return conn;
      },
      async (err) => {
        this.#starting = undefined;
        this.#lastError = (err as Error)?.message ?? String(err);
        await this.#cleanup();
        if (this.#state === "starting") this.#state = "stopped";
        throw err;
      },
    );
    this.#starting = starting;
    return starting;
  }

  async #launch(): Promise<McpConnection> {
    const o = this.#o;
    const spec = o.spec;
    const path = o.env?.get("PATH") ?? Deno.env.get("PATH") ?? "";
    const { target, pinned } = await checkServerHash(spec, { path });
    this.#target = {
      kind: target.kind,
      file: target.file,
      ...(target.kind === "none" ? {} : { hash: await hashFile(target.file) }),
    };
    const program = target.kind === "program" ? target.file : await findProgram(spec.command, path);
    const readOnly = [
      ...(o.readOnly ?? []),
      ...visibleRoots([
        ...(target.kind === "script" ? [{ path: target.file, kind: "script" as const }] : []),
        ...(program === undefined ? [] : [{ path: program, kind: "program" as const }]),
        ...(spec.origin.kind === "capsule" ? [{ path: spec.dir, kind: "dir" as const }] : []),
      ]),
    ];
    if (o.unsandboxedWarning !== undefined) this.#log("warn", o.unsandboxedWarning);
    if (!pinned) {
      this.#log("warn", "MCP server runs unpinned: no hash in its declaration", {
        target: target.file || spec.command,
      });
    }
    let workspace: string;
    const scope = this.#scope;
    if (scope !== undefined) {
      workspace = scope.workspaceRoot;
    } else {
      await Deno.mkdir(o.scratchDir, { recursive: true, mode: 0o700 });
      this.#probeDir = await Deno.makeTempDir({ dir: o.scratchDir, prefix: `${spec.name}-` });
      workspace = join(this.#probeDir, "workspace");
      await Deno.mkdir(workspace);
    }
    const values = { workspace, dir: spec.dir };
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(spec.env)) env[k] = expandPlaceholders(v, values);
    const argv = [spec.command, ...spec.args.map((a) => expandPlaceholders(a, values))];
    let process;
    try {
      process = await o.launcher.spawn({
        server: spec.name,
        argv,
        env: serverEnv(env, o.env),
        cwd: workspace,
        ...(scope === undefined ? {} : { overlay: scope.overlay }),
        ...(readOnly.length === 0 ? {} : { readOnly }),
        ...(scope === undefined || o.workspacePaths === undefined
          ? {}
          : { workspacePaths: o.workspacePaths }),
        ...(o.network === undefined ? {} : { network: o.network }),
        onStderr: (line) => {
          const caller = this.caller;
          this.#log("info", line, {
            stream: "stderr",
            ...(caller === undefined ? {} : { session: caller.session }),
          });
        },
      });
    } catch (err) {
      throw new McpError(
        McpCode.MCP_START_FAILED,
        `Cannot start MCP server "${spec.name}": ${(err as Error)?.message ?? err}`,
        { data: { server: spec.name, reason: String((err as Error)?.message ?? err) }, cause: err },
      );
    }
    this.#log("info", "Started MCP server", {
      pid: process.pid,
      sandboxed: o.launcher.sandboxed,
      ...(scope === undefined ? { probe: true } : { session: scope.session }),
    });
    const opened: { conn?: McpConnection } = {};
    const conn = await McpConnection.open(process, {
      server: spec.name,
      onToolsChanged: (tools) => o.onTools?.(tools),
      onLog: (line) => this.#serverLog(line),
      ...(o.onElicit === undefined ? {} : {
        onElicit: (params: ElicitRequest["params"], signal: AbortSignal) =>
          o.onElicit!(params, signal, this.caller),
      }),
      onError: (error) => this.#log("warn", error.message),
      onClose: () => {
        if (opened.conn !== undefined) void this.#exited(opened.conn, process);
      },
    });
    opened.conn = conn;
    if (conn.closed) {
      throw new McpError(McpCode.MCP_SERVER_EXITED, `MCP server "${spec.name}" exited at start`, {
        data: { server: spec.name },
      });
    }
    try {
      await conn.setLoggingLevel("info");
    } catch {
      // Logging is optional.
    }
    const tools = await conn.listTools();
    o.onTools?.(tools);
    return conn;
  }

  async #exited(conn: McpConnection, process: { exited: Promise<{ code: number | null }> }) {
    if (this.#conn !== conn || this.#state !== "running") return; // stopped on purpose
    this.#conn = undefined;
    this.#state = "backoff";
    this.#clearIdle();
    const { code } = await process.exited;
    const ranMs = this.#o.clock.now() - this.#startedAt;
    if (ranMs >= this.#policy.stableMs) this.#failures = 0;
    this.#failures++;
    this.#lastError = `exited with code ${code}`;
    await this.#cleanup();
    if (this.#state !== "backoff" || this.#restartTimer !== undefined) return; // stopped meanwhile
    if (this.#failures > this.#policy.maxFailures) {
      this.#state = "failed";
      this.#log("error", "MCP server keeps exiting: restarts stopped until it is reloaded", {
        exitCode: code,
        failures: this.#failures,
      });
      const waiters = this.#restartWaiters;
      this.#restartWaiters = [];
      for (const w of waiters) w.reject(this.#failedError());
      return;
    }
    const delay = restartDelay(this.#failures, this.#policy);
    this.#log("warn", `MCP server exited; restarting in ${delay} ms`, {
      exitCode: code,
      failures: this.#failures,
    });
    this.#restartTimer = this.#o.timers.setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#state !== "backoff") return;
      const waiters = this.#restartWaiters;
      this.#restartWaiters = [];
      this.#start().then(
        (c) => waiters.forEach((w) => w.resolve(c)),
        (err) => waiters.forEach((w) => w.reject(err)),
      );
    }, delay);
  }

  #failedError(): McpError {
    return new McpError(
      McpCode.MCP_SERVER_FAILED,
      `MCP server "${this.spec.name}" exited ${this.#failures} times in a row (last: ${
        this.#lastError ?? "unknown"
      }): reload it once fixed`,
      { data: { server: this.spec.name, restarts: this.#failures, reason: this.#lastError } },
    );
  }

  /** Removes a probe's scratch workspace. */
  async #cleanup(): Promise<void> {
    const dir = this.#probeDir;
    this.#probeDir = undefined;
    if (dir === undefined) return;
    try {
      await Deno.remove(dir, { recursive: true });
    } catch {
      // Already gone.
    }
  }

  /**
   * After a call: remembers when, and yields the session at once when the server is idle and
   * something waits for it. The idle and yield timers are armed once per run and re-armed by
   * their own callbacks, never per call (a timer set and cleared per call costs more than the
   * check).
   */
  #used(): void {
    this.#lastUsed = this.#o.clock.now();
    if (this.#inFlight > 0 || this.#state !== "running") return;
    if (this.#holdsSession() && this.#scope!.overlay.lock.waiting > 0) {
      void this.stop("yield");
      return;
    }
    this.#armIdle();
  }

  #holdsSession(): boolean {
    return this.#o.launcher.holdsSession && this.#scope !== undefined;
  }

  /** Arms the idle and yield timers unless they already run. */
  #armIdle(): void {
    if (this.#state !== "running") return;
    const ms = this.#o.idleTimeoutMs;
    if (ms > 0 && this.#idleTimer === undefined) this.#idleAfter(ms);
    if (this.#holdsSession() && this.#yieldTimer === undefined) this.#yieldAfter();
  }

  #idleAfter(delay: number): void {
    this.#idleTimer = this.#o.timers.setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#state !== "running") return;
      const ms = this.#o.idleTimeoutMs;
      if (this.#inFlight > 0) return this.#idleAfter(ms);
      const left = this.#lastUsed + ms - this.#o.clock.now();
      if (left > 0) this.#idleAfter(left);
      else void this.stop("idle");
    }, delay);
  }

  /** Stops the idle server once something waits for its session (see the module doc). */
  #yieldAfter(): void {
    this.#yieldTimer = this.#o.timers.setTimeout(() => {
      this.#yieldTimer = undefined;
      if (this.#state !== "running") return;
      if (this.#inFlight === 0 && this.#scope!.overlay.lock.waiting > 0) {
        void this.stop("yield");
        return;
      }
      this.#yieldAfter();
    }, YIELD_CHECK_MS);
  }

  #clearIdle(): void {
    if (this.#idleTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    if (this.#yieldTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#yieldTimer);
      this.#yieldTimer = undefined;
    }
  }

  #serverLog(line: McpLogLine): void {
    const data = typeof line.data === "string" ? line.data : JSON.stringify(line.data);
    const caller = this.caller;
    this.#log(LOG_LEVELS[line.level] ?? "info", String(data).slice(0, 4096), {
      stream: "mcp",
      ...(line.logger === undefined ? {} : { logger: line.logger }),
      ...(caller === undefined ? {} : { session: caller.session }),
    });
  }

  #log(level: McpLogEntry["level"], message: string, fields?: Record<string, unknown>): void {
    try {
      this.#o.log({ level, server: this.spec.name, message, ...(fields ? { fields } : {}) });
    } catch {
      // A log sink never breaks a server.
    }
  }
}
