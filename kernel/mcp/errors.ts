/**
 * Errors of the MCP engine: declaring servers (`[[mcp_server]]`, `etc/servers.toml`), pinning
 * their code by hash, starting them in the sandbox, and calling their tools.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/mcp/`. */
export const McpCode = {
  /** `etc/servers.toml` is not valid; `data.file`, `data.line`, `data.field`. */
  MCP_CONFIG_INVALID: "MCP_CONFIG_INVALID",
  /** A server name is used twice (a capsule's and an operator's, or two capsules'); `data.server`, `data.sources`. */
  MCP_SERVER_DUPLICATE: "MCP_SERVER_DUPLICATE",
  /** No server of that name is declared; `data.server`. */
  MCP_SERVER_UNKNOWN: "MCP_SERVER_UNKNOWN",
  /** The file the hash covers (program on PATH, or the script of an interpreter) cannot be found; `data.server`, `data.file`. */
  MCP_HASH_TARGET_MISSING: "MCP_HASH_TARGET_MISSING",
  /** The hashed file's BLAKE3 is not the pinned one: the server is refused; `data.server`, `data.file`, `data.expected`, `data.actual`. */
  MCP_HASH_MISMATCH: "MCP_HASH_MISMATCH",
  /** A hash is pinned for a launcher that fetches code at run time (`npx`, `uvx`, …), which no hash can pin; `data.server`, `data.command`. */
  MCP_HASH_UNPINNABLE: "MCP_HASH_UNPINNABLE",
  /** No namespace sandbox can be made and the operator has not opted in to unsandboxed servers; `data.server`, `data.reason`. */
  MCP_SANDBOX_UNAVAILABLE: "MCP_SANDBOX_UNAVAILABLE",
  /** The process could not be spawned, or did not complete `initialize`; `data.server`, `data.reason`. */
  MCP_START_FAILED: "MCP_START_FAILED",
  /** The server process exited while a request was in flight, or before it; `data.server`, `data.exitCode`. */
  MCP_SERVER_EXITED: "MCP_SERVER_EXITED",
  /** The server keeps dying: restarts stopped until it is reloaded; `data.server`, `data.restarts`. */
  MCP_SERVER_FAILED: "MCP_SERVER_FAILED",
  /** The server answered a request with a JSON-RPC error; `data.server`, `data.rpcCode`, `data.method`. */
  MCP_PROTOCOL: "MCP_PROTOCOL",
  /** A request got no answer in time; `data.server`, `data.method`, `data.timeoutMs`. */
  MCP_TIMEOUT: "MCP_TIMEOUT",
  /** The caller cancelled the request (the server was sent `notifications/cancelled`); `data.server`, `data.method`. */
  MCP_CANCELLED: "MCP_CANCELLED",
  /** The server has no tool of that name; `data.server`, `data.tool`. */
  MCP_TOOL_UNKNOWN: "MCP_TOOL_UNKNOWN",
  /** A tool call names a path its server may not touch (outside the capsule's fs capabilities); `data.tool`, `data.path`, `data.argument`. */
  MCP_PATH_DENIED: "MCP_PATH_DENIED",
  /** The security pipeline refused a tool call; `data.tool`, `data.layer`, `data.rule`. */
  MCP_CALL_DENIED: "MCP_CALL_DENIED",
  /** A call arrived without what the engine needs to place it (session, workspace); `data.field`. */
  MCP_CALL_INVALID: "MCP_CALL_INVALID",
  /** The engine is shut down; `data.server` when one was named. */
  MCP_CLOSED: "MCP_CLOSED",
} as const;

/** A code of {@link McpCode}. */
export type McpCode = typeof McpCode[keyof typeof McpCode];

/** Structured detail carried by an {@link McpError}. */
export interface McpErrorData {
  /** The server involved. */
  server?: string;
  /** The file involved (servers.toml, a hashed program or script). */
  file?: string;
  /** 1-based line in `file`. */
  line?: number;
  /** The field involved (`servers.fetch.command`, `arguments.path`, `session`). */
  field?: string;
  /** The pinned hash (`blake3:<hex>`). */
  expected?: string;
  /** The hash found (`blake3:<hex>`). */
  actual?: string;
  /** The program named. */
  command?: string;
  /** Why it failed, in words. */
  reason?: string;
  /** The process exit code, when known. */
  exitCode?: number | null;
  /** How many restarts were tried. */
  restarts?: number;
  /** The JSON-RPC error code the server sent. */
  rpcCode?: number;
  /** The MCP method involved (`tools/call`, `initialize`). */
  method?: string;
  /** The limit that was exceeded, in ms. */
  timeoutMs?: number;
  /** The tool involved (bus name). */
  tool?: string;
  /** The path involved (canonical host path). */
  path?: string;
  /** The argument the path came from (`path`, `paths[1]`). */
  argument?: string;
  /** The security layer that decided. */
  layer?: string;
  /** The rule that decided. */
  rule?: string;
  /** Where the duplicate names come from. */
  sources?: string[];
}

/** Raised by the MCP engine. */
export class McpError extends AstridError<McpCode, McpErrorData> {}
