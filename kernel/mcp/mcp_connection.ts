/**
 * One live MCP client session with one server process, over the SDK `Client`:
 *
 * - `initialize` with version negotiation (the SDK offers the latest version and accepts any
 *   it supports; {@link McpConnection.protocolVersion} says which was agreed), the client
 *   capabilities `elicitation` (form) — and no `roots`: a server's root comes from its
 *   arguments, pointing at the overlay view, never from the client;
 * - `tools/list` followed through every page (`nextCursor`); `notifications/tools/list_changed`
 *   re-lists and reports the new list to `onToolsChanged`; results are relayed as the server
 *   sent them (`structuredContent` is not checked against the tool's `outputSchema` here);
 * - `tools/call` with progress (a progress token is sent; each notification reaches
 *   `onProgress` and resets the timeout) and cancellation (aborting the signal sends
 *   `notifications/cancelled`);
 * - `resources/list`, `resources/templates/list`, `prompts/list` (paginated, when the server
 *   declares them), `ping`, `logging/setLevel`;
 * - `notifications/message` (server logs) to `onLog`; `elicitation/create` to `onElicit`
 *   (declined when there is none).
 *
 * When the process exits, every request in flight rejects with `MCP_SERVER_EXITED`
 * (the SDK's ConnectionClosed) and `onClose` runs once.
 *
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  type CallToolResult,
  CallToolResultSchema,
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
  ErrorCode,
  ListToolsResultSchema,
  LoggingMessageNotificationSchema,
  McpError as SdkMcpError,
  type Progress,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { VERSION } from "../version.ts";
import { McpCode, McpError } from "./errors.ts";
import { ProcessTransport, type StdioProcess } from "./process_transport.ts";

export type { CallToolResult, ElicitRequest, ElicitResult, Progress, Prompt, Resource, Tool };

/** The most pages a list request follows before it stops (a server that never ends). */
export const MAX_LIST_PAGES = 100;

/** A server log line (`notifications/message`). */
export interface McpLogLine {
  /** The syslog level the server gave (`debug` … `emergency`). */
  readonly level: string;
  /** The server's logger name, if any. */
  readonly logger?: string;
  /** The logged data. */
  readonly data: unknown;
}

/** Options of {@link McpConnection.open}. */
export interface McpConnectionOptions {
  /** The server's name, for errors. */
  server: string;
  /** Time allowed for `initialize`, ms (default 30,000). */
  initializeTimeoutMs?: number;
  /** Called with the new tool list after `notifications/tools/list_changed`. */
  onToolsChanged?: (tools: Tool[]) => void;
  /** Called with each server log message. */
  onLog?: (line: McpLogLine) => void;
  /** Answers an elicitation request from the server; without it, requests are declined. */
  onElicit?: (params: ElicitRequest["params"], signal: AbortSignal) => Promise<ElicitResult>;
  /** Called once when the connection ends (process exit or close). */
  onClose?: () => void;
  /** Called with transport errors (unreadable output); for the log. */
  onError?: (error: Error) => void;
}

/** Options of {@link McpConnection.callTool}. */
export interface CallOptions {
  /** Aborting cancels the call (the server is told). */
  signal?: AbortSignal;
  /** Called with each progress notification. */
  onProgress?: (progress: Progress) => void;
  /** The time limit, ms; progress resets it (default 300,000). */
  timeoutMs?: number;
}

/** One initialized client session with one server; see the module doc. */
export class McpConnection {
  readonly #client: Client;
  readonly #transport: VersionedTransport;
  readonly #server: string;
  #closed = false;

  private constructor(client: Client, transport: VersionedTransport, server: string) {
    this.#client = client;
    this.#transport = transport;
    this.#server = server;
  }

  /**
   * Connects to the server running as `process` and completes `initialize`. Rejects with
   * `MCP_START_FAILED` (the process is killed) when it does not.
   */
  static async open(process: StdioProcess, options: McpConnectionOptions): Promise<McpConnection> {
    const client = new Client(
      { name: "astrid", version: VERSION },
      { capabilities: { elicitation: { form: {} } } },
    );
    const transport = new VersionedTransport(process);
    const conn = new McpConnection(client, transport, options.server);
    client.onclose = () => {
      conn.#closed = true;
      options.onClose?.();
    };
    client.onerror = (error) => options.onError?.(error);
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      if (options.onToolsChanged === undefined || conn.#closed) return;
      try {
        options.onToolsChanged(await conn.listTools());
      } catch (err) {
        options.onError?.(err as Error);
      }
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      options.onLog?.({
        level: n.params.level,
        ...(n.params.logger === undefined ? {} : { logger: n.params.logger }),
        data: n.params.data,
      });
    });
    client.setRequestHandler(ElicitRequestSchema, async (request, extra) => {
      if (options.onElicit === undefined) return { action: "decline" };
      return await options.onElicit(request.params, extra.signal);
    });
    try {
      await client.connect(transport, { timeout: options.initializeTimeoutMs ?? 30_000 });
    } catch (err) {
      process.kill("SIGKILL");
      throw new McpError(
        McpCode.MCP_START_FAILED,
        `MCP server "${options.server}" did not complete initialize: ${
          (err as Error)?.message ?? err
        }`,
        { data: { server: options.server, reason: String((err as Error)?.message ?? err) } },
      );
    }
    return conn;
  }

  /** The server's process id. */
  get pid(): number {
    return this.#transport.process.pid;
  }

  /** The protocol version agreed in `initialize`. */
  get protocolVersion(): string | undefined {
    return this.#transport.protocolVersion;
  }

  /** The server's name and version, as it announced them. */
  get serverInfo(): { name: string; version: string } | undefined {
    const v = this.#client.getServerVersion();
    return v === undefined ? undefined : { name: v.name, version: v.version };
  }

  /** The server's instructions, if it gave any. */
  get instructions(): string | undefined {
    return this.#client.getInstructions();
  }

  /** What the server declared it supports. */
  get capabilities(): Record<string, unknown> {
    return (this.#client.getServerCapabilities() ?? {}) as Record<string, unknown>;
  }

  /** True once the process exited or the connection was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Every tool, all pages followed. */
  async listTools(): Promise<Tool[]> {
    if (this.capabilities.tools === undefined) return [];
    // The raw request, not `Client.listTools()`: that one caches each tool's output schema and
    // then validates every result against it. The engine relays results as they are; whoever
    // consumes `structuredContent` may check it (~40 µs a call saved).
    return await this.#pages("tools/list", async (cursor) => {
      const r = await this.#client.request(
        { method: "tools/list", params: cursor === undefined ? {} : { cursor } },
        ListToolsResultSchema,
      );
      return { items: r.tools, next: r.nextCursor };
    });
  }

  /** Every resource (empty when the server declares none), all pages followed. */
  async listResources(): Promise<Resource[]> {
    if (this.capabilities.resources === undefined) return [];
    return await this.#pages("resources/list", async (cursor) => {
      const r = await this.#client.listResources(cursor === undefined ? {} : { cursor });
      return { items: r.resources, next: r.nextCursor };
    });
  }

  /** Every resource template (empty when the server declares no resources). */
  async listResourceTemplates(): Promise<ResourceTemplate[]> {
    if (this.capabilities.resources === undefined) return [];
    return await this.#pages("resources/templates/list", async (cursor) => {
      const r = await this.#client.listResourceTemplates(cursor === undefined ? {} : { cursor });
      return { items: r.resourceTemplates, next: r.nextCursor };
    });
  }

  /** Every prompt (empty when the server declares none), all pages followed. */
  async listPrompts(): Promise<Prompt[]> {
    if (this.capabilities.prompts === undefined) return [];
    return await this.#pages("prompts/list", async (cursor) => {
      const r = await this.#client.listPrompts(cursor === undefined ? {} : { cursor });
      return { items: r.prompts, next: r.nextCursor };
    });
  }

  /** Calls `name` with `args`; see {@link CallOptions}. */
  async callTool(
    name: string,
    args: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<CallToolResult> {
    try {
      const r = await this.#client.callTool({ name, arguments: args }, CallToolResultSchema, {
        signal: options.signal,
        onprogress: options.onProgress,
        timeout: options.timeoutMs ?? 300_000,
        resetTimeoutOnProgress: true,
      });
      return r as CallToolResult;
    } catch (err) {
      throw this.#mapError(err, "tools/call", options);
    }
  }

  /** Sends `ping`; resolves once the server answered. */
  async ping(timeoutMs = 10_000): Promise<void> {
    try {
      await this.#client.ping({ timeout: timeoutMs });
    } catch (err) {
      throw this.#mapError(err, "ping", { timeoutMs });
    }
  }

  /** Asks the server to send logs at `level` and above (when it declares logging). */
  async setLoggingLevel(level: "debug" | "info" | "notice" | "warning" | "error"): Promise<void> {
    if (this.capabilities.logging === undefined) return;
    try {
      await this.#client.setLoggingLevel(level);
    } catch (err) {
      throw this.#mapError(err, "logging/setLevel", {});
    }
  }

  /** Closes stdin and waits for the process to exit (SIGTERM, then SIGKILL, if it lingers). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#client.close();
  }

  async #pages<T>(
    method: string,
    page: (cursor: string | undefined) => Promise<{ items: T[]; next?: string }>,
  ): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    try {
      for (let i = 0; i < MAX_LIST_PAGES; i++) {
        const r = await page(cursor);
        out.push(...r.items);
        if (r.next === undefined || r.next === "" || r.next === cursor) return out;
        cursor = r.next;
      }
    } catch (err) {
      throw this.#mapError(err, method, {});
    }
    return out;
  }

  #mapError(err: unknown, method: string, options: CallOptions): McpError {
    const server = this.#server;
    if (err instanceof McpError) return err;
    if (options.signal?.aborted) {
      return new McpError(McpCode.MCP_CANCELLED, `Cancelled ${method} on MCP server "${server}"`, {
        data: { server, method },
        cause: err,
      });
    }
    if (err instanceof SdkMcpError) {
      if (err.code === ErrorCode.ConnectionClosed || this.#closed) {
        return new McpError(
          McpCode.MCP_SERVER_EXITED,
          `MCP server "${server}" exited during ${method}`,
          { data: { server, method }, cause: err },
        );
      }
      if (err.code === ErrorCode.RequestTimeout) {
        const timeoutMs = options.timeoutMs;
        return new McpError(
          McpCode.MCP_TIMEOUT,
          `MCP server "${server}" did not answer ${method} within ${timeoutMs ?? "the"} ms`,
          {
            data: { server, method, ...(timeoutMs === undefined ? {} : { timeoutMs }) },
            cause: err,
          },
        );
      }
      return new McpError(
        McpCode.MCP_PROTOCOL,
        `MCP server "${server}" answered ${method} with error ${err.code}: ${
          err.message.replace(/^MCP error -?\d+: /, "")
        }`,
        { data: { server, method, rpcCode: err.code }, cause: err },
      );
    }
    if (this.#closed) {
      return new McpError(
        McpCode.MCP_SERVER_EXITED,
        `MCP server "${server}" exited during ${method}`,
        { data: { server, method }, cause: err },
      );
    }
    return new McpError(
      McpCode.MCP_PROTOCOL,
      `MCP server "${server}" failed ${method}: ${(err as Error)?.message ?? err}`,
      { data: { server, method }, cause: err },
    );
  }
}

/** Remembers the protocol version the SDK client agreed on. */
class VersionedTransport extends ProcessTransport {
  protocolVersion: string | undefined;

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }
}
