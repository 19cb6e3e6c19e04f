/**
 * `astrid mcp …`: Astrid as an MCP server for any MCP client, and the MCP engine's servers.
 *
 * - `astrid mcp serve [--principal P] [--session ID] [--workspace DIR]`: a stdio MCP server
 *   exposing the capsule tools of the running daemon (started when none runs), its session bound
 *   to the workspace of DIR (default: of the working directory). `tools/list` asks the daemon
 *   (`tools`), `tools/call` goes through the normal pipeline (`call_tool`: the tool's capsule
 *   or MCP server, its security checks, the audit log) and a cancelled request is cancelled
 *   in the daemon (`cancel_tool`). A call with a `_meta.progressToken` gets
 *   `notifications/progress` with that token for each progress event of its call
 *   (`tool.v1.execute.<name>.progress` naming its `call_id`: what a hosted MCP server reports,
 *   or any tool that publishes progress). `notifications/tools/list_changed` follows
 *   `astrid.v1.capsules_loaded` and `tool.v1.list_changed`. Approval requests and elicitations
 *   of the session are put to the user through MCP elicitation when the client supports it
 *   (Approve once / for this session / always / Deny; decline or cancel → Deny); without it
 *   the connection is headless and the daemon denies at once (DESIGN §3a). stdout carries only
 *   MCP frames; every log line goes to stderr.
 * - `astrid mcp servers [--json]`: the declared servers, their state and tools.
 * - `astrid mcp reload [SERVER]`: stops and restarts one server (or all) without restarting
 *   the daemon: instances stop (their writes folded into the session overlays), the hash is
 *   checked again and the tools re-listed.
 *
 * The MCP SDK loads only for `serve`, so the other verbs start fast.
 *
 * @module
 */
import type { DaemonClient, EventFrame, JsonValue } from "../kernel/daemon/mod.ts";
import { VERSION } from "../kernel/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { findWorkspaceRoot } from "./capsule_scope.ts";
import { ensureDaemon } from "./ensure_daemon.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

const USAGE = `Usage: astrid mcp <command>
  serve [--principal P] [--session ID] [--workspace DIR]
                                         Serve the daemon's capsule tools to an MCP client over stdio
  servers [--json]                       List the MCP servers the engine runs, their state and tools
  reload [SERVER]                        Restart one MCP server (or all) without restarting the daemon`;

/** Runs `astrid mcp …`. */
export async function runMcp(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "serve":
      return await runServe(rest, io);
    case "servers":
      return await runServers(rest, io);
    case "reload":
      return await runReload(rest, io);
    case "-h":
    case "--help":
    case "help":
      io.out(USAGE);
      return 0;
    case undefined:
      throw new UsageError("mcp", "Missing command: use serve, servers or reload");
    default:
      throw new UsageError("mcp", `Unknown command "mcp ${sub}": use serve, servers or reload`);
  }
}

interface ServerRow {
  name: string;
  id: string;
  origin: string;
  state: string;
  error?: string;
  tools: string[];
  sandboxed: boolean;
  pinned: boolean;
  target?: { kind: string; file: string; hash?: string };
  instances: { state: string; session?: string; pid?: number }[];
}

async function runServers(args: string[], io: CliIo): Promise<number> {
  const { values } = parseVerbArgs("mcp", args, {
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out("Usage: astrid mcp servers [--json]\n  List the MCP servers, their state and tools");
    return 0;
  }
  const { client } = await ensureDaemon({ client: "cli" });
  try {
    const rows = await client.call<ServerRow[]>("mcp", { request: "servers" });
    if (values.json) {
      io.out(JSON.stringify(rows));
      return 0;
    }
    if (rows.length === 0) io.out("No MCP servers are declared (etc/servers.toml, [[mcp_server]])");
    for (const r of rows) {
      const running = r.instances.filter((i) => i.state === "running").length;
      io.out(
        `${r.name}  ${r.state}${
          r.sandboxed ? "" : " (unsandboxed)"
        }  ${r.tools.length} tools  ${running} running  (${r.origin})`,
      );
      if (r.error !== undefined) io.out(`  ${r.error}`);
      if (r.target?.hash !== undefined) {
        io.out(
          `  ${
            r.pinned ? "pinned" : "unpinned"
          }: ${r.target.kind} ${r.target.file} ${r.target.hash}`,
        );
      } else if (r.target?.kind === "none") {
        io.out("  unpinned: its launcher fetches code at run time");
      }
    }
    return 0;
  } finally {
    await client.close();
  }
}

async function runReload(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("mcp", args, {
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(
      "Usage: astrid mcp reload [SERVER]\n  Restart one MCP server (or all) without restarting the daemon",
    );
    return 0;
  }
  if (positionals.length > 1) throw new UsageError("mcp", "mcp reload takes at most one SERVER");
  const { client } = await ensureDaemon({ client: "cli" });
  try {
    const rows = await client.call<ServerRow[]>("mcp", {
      request: "reload",
      params: positionals.length === 0 ? {} : { server: positionals[0] },
    });
    for (const r of rows) {
      io.out(
        `${r.name}: ${r.state}${
          r.error === undefined ? "" : `: ${r.error}`
        } (${r.tools.length} tools)`,
      );
    }
    return rows.every((r) => r.state === "ready") ? 0 : 1;
  } finally {
    await client.close();
  }
}

async function runServe(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("mcp", args, {
    principal: { type: "string" },
    session: { type: "string" },
    workspace: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.err(
      "Usage: astrid mcp serve [--principal P] [--session ID] [--workspace DIR]\n  Serve the daemon's capsule tools to an MCP client over stdio (configure it as the client's command)",
    );
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError("mcp", `Unexpected argument "${positionals[0]}" for mcp serve`);
  }
  const bridge = new McpServeBridge({
    principal: values.principal,
    session: values.session,
    workspace: values.workspace,
    log: (line) => io.err(`astrid mcp serve: ${line}`),
  });
  return await bridge.run();
}

/** Options of {@link McpServeBridge}. */
export interface McpServeOptions {
  /** The principal to act as (default `default`). */
  principal?: string;
  /** The session to attach to (default: a fresh one). */
  session?: string;
  /** A directory inside the workspace to bind the session to (default: the working directory). */
  workspace?: string;
  /** Where log lines go (stderr). */
  log: (line: string) => void;
}

type ApprovalPayload = {
  id: string;
  summary?: string;
  resource?: string;
  kind?: string;
  answers?: string[];
  withdrawn?: boolean;
};

/** A tool's progress, as `tool.v1.execute.<name>.progress` carries it. */
interface ToolProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** The tools' progress events (DESIGN §5: tool names are one segment). */
const PROGRESS_PATTERN = "tool.v1.execute.*.progress";
/** How long a result waits for progress events still on their way, ms. */
const PROGRESS_DRAIN_MS = 2_000;

/** Relays one call's progress and tells when the last announced event has passed. */
class ProgressRelay {
  readonly #send: (p: ToolProgress) => void;
  #received = 0;
  #waiter: { want: number; resolve: () => void } | undefined;

  constructor(send: (p: ToolProgress) => void) {
    this.#send = send;
  }

  relay(p: ToolProgress): void {
    this.#received++;
    this.#send(p);
    if (this.#waiter !== undefined && this.#received >= this.#waiter.want) this.#waiter.resolve();
  }

  /** Resolves with the number relayed once `count` events were, or after `limitMs`. */
  async drained(count: number, limitMs: number): Promise<number> {
    if (this.#received >= count) return this.#received;
    const done = Promise.withResolvers<void>();
    this.#waiter = { want: count, resolve: done.resolve };
    const timer = setTimeout(done.resolve, limitMs);
    try {
      await done.promise;
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
    }
    return this.#received;
  }
}

const ANSWER_TITLES: Record<string, string> = {
  allow_once: "Approve once",
  allow_session: "Approve for this session",
  allow_workspace: "Approve for this workspace",
  allow_always: "Approve always",
  deny: "Deny",
};

/** The MCP server side of `astrid mcp serve`; see the module doc. */
export class McpServeBridge {
  readonly #o: McpServeOptions;
  #daemon: DaemonClient | undefined;
  #toolNames = new Set<string>();
  #approvals = new Map<string, AbortController>();
  #progress = new Map<string, ProgressRelay>();
  #progressSub: Promise<boolean> | undefined;

  /** Creates the bridge; {@link run} serves until stdin closes. */
  constructor(options: McpServeOptions) {
    this.#o = options;
  }

  /** Serves MCP on stdin/stdout until the client leaves; resolves the exit code. */
  async run(): Promise<number> {
    const { Server } = await import("@modelcontextprotocol/sdk/server");
    // @ts-types="@modelcontextprotocol/sdk/server/stdio"
    const { StdioServerTransport } = await import("@modelcontextprotocol/sdk/server/stdio.js");
    // @ts-types="@modelcontextprotocol/sdk/types"
    const types = await import("@modelcontextprotocol/sdk/types.js");
    const log = this.#o.log;
    const server = new Server({ name: "astrid", version: VERSION }, {
      capabilities: { tools: { listChanged: true } },
      instructions:
        "Tools of the capsules loaded in this Astrid daemon. Calls run through Astrid's security pipeline; some may ask you for approval.",
    });
    const daemon = Promise.withResolvers<DaemonClient>();
    daemon.promise.catch(() => {});

    server.oninitialized = () => {
      const caps = server.getClientCapabilities();
      const elicitation = caps?.elicitation !== undefined &&
        (caps.elicitation.form !== undefined || caps.elicitation.url === undefined);
      this.#connect(elicitation, server, types).then(daemon.resolve, (err) => {
        log(`cannot reach the daemon: ${(err as Error)?.message ?? err}`);
        daemon.reject(err);
      });
    };

    server.setRequestHandler(types.ListToolsRequestSchema, async () => {
      const client = await daemon.promise;
      const r = await client.call<
        { tools: { name: string; description: string; input_schema: Record<string, unknown> }[] }
      >("tools");
      this.#toolNames = new Set(r.tools.map((t) => t.name));
      return {
        tools: r.tools.map((t) => ({
          name: t.name,
          description: t.description,
          inputSchema: { type: "object", ...t.input_schema } as { type: "object" },
        })),
      };
    });

    server.setRequestHandler(types.CallToolRequestSchema, async (req, extra) => {
      const client = await daemon.promise;
      const name = req.params.name;
      const callId = crypto.randomUUID();
      const onAbort = () => {
        client.call("cancel_tool", { call_id: callId }).catch(() => {});
      };
      extra.signal.addEventListener("abort", onAbort, { once: true });
      const token = req.params._meta?.progressToken;
      if (token !== undefined && await this.#followProgress(client)) {
        this.#progress.set(
          callId,
          new ProgressRelay((p) => {
            extra.sendNotification({
              method: "notifications/progress",
              params: {
                progressToken: token,
                progress: p.progress,
                ...(p.total === undefined ? {} : { total: p.total }),
                ...(p.message === undefined ? {} : { message: p.message }),
              },
            }).catch(() => {});
          }),
        );
      }
      try {
        const result = await client.call<Record<string, JsonValue>>("call_tool", {
          name,
          arguments: (req.params.arguments ?? {}) as JsonValue,
          call_id: callId,
        });
        // Progress events travel beside the result: relay the last of them before it.
        const sent = typeof result?.progress_count === "number" ? result.progress_count : 0;
        const relay = this.#progress.get(callId);
        if (relay !== undefined && (await relay.drained(sent, PROGRESS_DRAIN_MS)) > 0) {
          // An SDK client handles a notification a microtask after reading it but a response
          // at once, so progress read in the same chunk as the result would be dropped; a ping
          // answered means everything sent before it was handled.
          await server.request({ method: "ping" }, types.EmptyResultSchema, {
            timeout: PROGRESS_DRAIN_MS,
          }).catch(() => {});
        }
        return toCallResult(result);
      } catch (err) {
        const message = (err as Error)?.message ?? String(err);
        return { isError: true, content: [{ type: "text" as const, text: message }] };
      } finally {
        extra.signal.removeEventListener("abort", onAbort);
        this.#progress.delete(callId);
      }
    });

    const { default: process } = await import("node:process");
    const transport = new StdioServerTransport();
    const closed = Promise.withResolvers<void>();
    server.onclose = () => closed.resolve();
    // The SDK transport does not notice the end of stdin: the client left, so stop.
    process.stdin.once("end", () => void server.close());
    await server.connect(transport);
    daemon.promise.then((client) =>
      client.closed.then((info) => {
        log(`the daemon connection ended (${info.reason}): stopping`);
        void server.close();
      })
    ).catch(() => {});
    await closed.promise;
    for (const a of this.#approvals.values()) a.abort();
    if (this.#daemon !== undefined) await this.#daemon.close().catch(() => {});
    return 0;
  }

  async #connect(
    elicitation: boolean,
    server: McpServer,
    types: McpTypes,
  ): Promise<DaemonClient> {
    const workspace = await findWorkspaceRoot(this.#o.workspace ?? Deno.cwd());
    const { client } = await ensureDaemon({
      client: "mcp-serve",
      workspace,
      ...(this.#o.principal === undefined ? {} : { principal: this.#o.principal }),
      ...(this.#o.session === undefined ? {} : { session: this.#o.session }),
      ...(elicitation ? { elicitation: true } : {}),
    });
    this.#daemon = client;
    this.#o.log(
      `connected as principal "${client.welcome.principal}", session "${client.welcome.session}"${
        elicitation ? "" : " (no elicitation: approvals are denied)"
      }`,
    );
    const changed = async (sub: { next(): Promise<EventFrame | undefined> }) => {
      for (let e = await sub.next(); e !== undefined; e = await sub.next()) {
        server.sendToolListChanged().catch(() => {});
      }
    };
    for (const pattern of ["astrid.v1.capsules_loaded", "tool.v1.list_changed"]) {
      try {
        void changed(await client.subscribe(pattern));
      } catch (err) {
        this.#o.log(`cannot follow ${pattern}: ${(err as Error)?.message ?? err}`);
      }
    }
    const approvals = await client.subscribe("astrid.v1.approval.*").catch(() => undefined);
    const requests = await client.subscribe("astrid.v1.approval").catch(() => undefined);
    const elicits = await client.subscribe("astrid.v1.elicit.*").catch(() => undefined);
    if (requests !== undefined) {
      void (async () => {
        for (let e = await requests.next(); e !== undefined; e = await requests.next()) {
          void this.#approve(e.payload as ApprovalPayload, elicitation, server, types, client);
        }
      })();
      const pending = await client.call<{ requests: ApprovalPayload[] }>("approvals").catch(() => ({
        requests: [],
      }));
      for (const p of pending.requests) void this.#approve(p, elicitation, server, types, client);
    }
    if (approvals !== undefined) {
      void (async () => {
        for (let e = await approvals.next(); e !== undefined; e = await approvals.next()) {
          const p = e.payload as ApprovalPayload;
          if (p?.withdrawn === true) this.#approvals.get(p.id)?.abort();
        }
      })();
    }
    if (elicits !== undefined) {
      void (async () => {
        for (let e = await elicits.next(); e !== undefined; e = await elicits.next()) {
          if (e.topic.startsWith("astrid.v1.elicit.response.")) continue;
          void this.#elicit(e, elicitation, server, types, client);
        }
      })();
    }
    return client;
  }

  /**
   * Subscribes once to the tools' progress (`tool.v1.execute.*.progress`) and hands each event
   * naming a call of this bridge (`call_id`) to that call; false when the daemon does not let
   * clients follow progress (calls then work without it; logged once).
   */
  #followProgress(client: DaemonClient): Promise<boolean> {
    this.#progressSub ??= client.subscribe(PROGRESS_PATTERN).then(
      (sub) => {
        void (async () => {
          for (let e = await sub.next(); e !== undefined; e = await sub.next()) {
            const p = e.payload as Partial<ToolProgress> & { call_id?: unknown };
            if (typeof p?.call_id !== "string" || typeof p.progress !== "number") continue;
            this.#progress.get(p.call_id)?.relay({
              progress: p.progress,
              ...(typeof p.total === "number" ? { total: p.total } : {}),
              ...(typeof p.message === "string" ? { message: p.message } : {}),
            });
          }
        })();
        return true;
      },
      (err) => {
        this.#o.log(`tool progress is not relayed: ${(err as Error)?.message ?? err}`);
        return false;
      },
    );
    return this.#progressSub;
  }

  /** Puts one approval request to the user (or denies it when the client cannot ask). */
  async #approve(
    request: ApprovalPayload,
    elicitation: boolean,
    server: McpServer,
    types: McpTypes,
    client: DaemonClient,
  ): Promise<void> {
    if (typeof request?.id !== "string" || this.#approvals.has(request.id)) return;
    const answer = (body: Record<string, JsonValue>) =>
      client.publish(`astrid.v1.approval.response.${request.id}`, body).catch((err) =>
        this.#o.log(`cannot answer approval ${request.id}: ${(err as Error)?.message ?? err}`)
      );
    if (!elicitation) {
      await answer({
        answer: "deny",
        reason: "The MCP client cannot ask the user (no elicitation)",
      });
      return;
    }
    const offered = (request.answers ?? ["allow_once", "deny"]).filter((a) =>
      a !== "allow_workspace"
    );
    const abort = new AbortController();
    this.#approvals.set(request.id, abort);
    try {
      const r = await server.request(
        {
          method: "elicitation/create",
          params: {
            mode: "form",
            message: `Astrid asks for approval: ${
              request.summary ?? request.resource ?? request.kind
            }`,
            requestedSchema: {
              type: "object",
              properties: {
                decision: {
                  type: "string",
                  title: "Decision",
                  oneOf: offered.map((a) => ({ const: a, title: ANSWER_TITLES[a] ?? a })),
                },
              },
              required: ["decision"],
            },
          },
        },
        types.ElicitResultSchema,
        { signal: abort.signal, timeout: 30 * 60_000 },
      );
      const decision = r.action === "accept" ? r.content?.decision : undefined;
      if (typeof decision === "string" && offered.includes(decision)) {
        await answer({ answer: decision });
      } else {
        await answer({ answer: "deny", reason: `The user chose ${r.action} in the MCP client` });
      }
    } catch (err) {
      if (!abort.signal.aborted) {
        await answer({
          answer: "deny",
          reason: `The MCP client did not answer: ${(err as Error)?.message ?? err}`,
        });
      }
    } finally {
      this.#approvals.delete(request.id);
    }
  }

  /** Relays a capsule's elicitation (`astrid.v1.elicit.<id>`) to the user. */
  async #elicit(
    event: EventFrame,
    elicitation: boolean,
    server: McpServer,
    types: McpTypes,
    client: DaemonClient,
  ): Promise<void> {
    const q = event.payload as {
      id?: string;
      capsule?: string;
      message?: string;
      type?: string;
      options?: string[];
      default?: string;
    };
    if (typeof q?.id !== "string") return;
    const topic = `astrid.v1.elicit.response.${q.id}`;
    if (!elicitation) {
      await client.publish(topic, { cancelled: true, reason: "The MCP client cannot ask the user" })
        .catch(() => {});
      return;
    }
    const field = q.type === "confirm"
      ? { type: "boolean", title: "Answer" }
      : q.type === "select"
      ? { type: "string", title: "Answer", enum: q.options ?? [] }
      : {
        type: "string",
        title: "Answer",
        ...(q.default === undefined ? {} : { default: q.default }),
      };
    try {
      const r = await server.request(
        {
          method: "elicitation/create",
          params: {
            mode: "form",
            message: `${q.capsule ?? "A capsule"} asks: ${q.message ?? ""}`,
            requestedSchema: {
              type: "object",
              properties: { answer: field },
              required: ["answer"],
            },
          },
        },
        types.ElicitResultSchema,
        { timeout: 30 * 60_000 },
      );
      const value = r.action === "accept" ? r.content?.answer : undefined;
      await client.publish(
        topic,
        value === undefined
          ? { cancelled: true, reason: `The user chose ${r.action}` }
          : { value: value as JsonValue },
      );
    } catch (err) {
      await client.publish(topic, {
        cancelled: true,
        reason: String((err as Error)?.message ?? err),
      })
        .catch(() => {});
    }
  }
}

type McpServer = InstanceType<typeof import("@modelcontextprotocol/sdk/server").Server>;
// @ts-types="@modelcontextprotocol/sdk/types"
type McpTypes = typeof import("@modelcontextprotocol/sdk/types.js");

/** An MCP `tools/call` result from a `call_tool` result payload. */
function toCallResult(r: Record<string, JsonValue>) {
  const isError = r.is_error === true;
  const mcp = r.mcp as
    | { content?: unknown[]; structured_content?: Record<string, unknown> }
    | undefined;
  const content = Array.isArray(mcp?.content) && mcp.content.length > 0 ? mcp.content : [{
    type: "text",
    text: typeof r.content === "string" ? r.content : JSON.stringify(r.content ?? null),
  }];
  return {
    content,
    ...(isError ? { isError: true } : {}),
    ...(mcp?.structured_content !== undefined && !isError
      ? { structuredContent: mcp.structured_content }
      : {}),
  } as { content: { type: "text"; text: string }[]; isError?: boolean };
}
