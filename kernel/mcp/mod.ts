/**
 * The mcp engine: native MCP servers that capsules (`[[mcp_server]]`) and the operator
 * (`etc/servers.toml`) declare, run as stdio subprocesses in the namespace sandbox over the
 * session overlay, with their code pinned by BLAKE3, restarted with backoff, stopped when idle,
 * and their tools put on the bus as ordinary tools (`tool.v1.execute.<server>__<tool>`) that pass
 * the security pipeline and the audit log like any other. It owns the MCP client side (the SDK
 * `Client` over a process transport), server specs and their hash rule, `servers.toml`, tool
 * naming, the check of a call's path arguments, and relaying a server's elicitations.
 *
 * It leaves to others: the namespace mechanism (`sandbox/`), deciding on calls (`security/`),
 * the overlay (`vfs/`), loading capsules (`capsule/`), and the MCP server side that serves the
 * daemon's tools to MCP clients (`cli/mcp_command.ts`, over the daemon's `tools`/`call_tool`
 * methods). See `docs/mcp.md`.
 *
 * @module
 */
export {
  type CapsuleSource,
  type EngineSandbox,
  type LoadedCapsuleView,
  McpEngine,
  type McpEngineOptions,
} from "./mcp_engine.ts";
export {
  MCP_REQUEST_PREFIX,
  type McpAudit,
  McpHost,
  type McpHostOptions,
  type McpOwner,
  type McpScope,
  type McpScopeResolver,
  type McpSecurity,
  type McpServerState,
  type McpServerStatus,
  type McpToolInfo,
  resultText,
  SESSION_ENDED_TOPIC,
  TOOL_CANCEL_TOPIC,
  TOOLS_CHANGED_TOPIC,
} from "./mcp_host.ts";
export {
  type CallOptions,
  MAX_LIST_PAGES,
  McpConnection,
  type McpConnectionOptions,
  type McpLogLine,
} from "./mcp_connection.ts";
export {
  DEFAULT_RESTART,
  type InstanceInfo,
  type InstanceScope,
  type InstanceState,
  type McpLogEntry,
  type McpLogSink,
  McpServerInstance,
  type McpServerInstanceOptions,
  restartDelay,
  type RestartPolicy,
  YIELD_CHECK_MS,
} from "./server_instance.ts";
export {
  childProcess,
  DirectLauncher,
  INHERITED_ENV,
  type McpLaunch,
  type McpLauncher,
  serverEnv,
  SYSTEM_DIRS,
  visibleRoots,
} from "./launcher.ts";
export { type BackgroundSandbox, SandboxLauncher, STDERR_DRAIN_MS } from "./sandbox_launcher.ts";
export {
  CLOSE_GRACE_MS,
  MAX_LINE_BYTES,
  ProcessTransport,
  type StdioProcess,
} from "./process_transport.ts";
export {
  describeOrigin,
  expandPlaceholders,
  type McpServerOrigin,
  type McpServerSpec,
  specsFromManifest,
} from "./server_spec.ts";
export {
  DEFAULT_MCP_SETTINGS,
  loadServersToml,
  type McpSettings,
  parseServersToml,
  SERVER_NAME_RE,
  type ServersFile,
} from "./servers_toml.ts";
export {
  checkServerHash,
  findProgram,
  hashFile,
  type HashOptions,
  type HashTarget,
  hashTarget,
  INTERPRETERS,
  LAUNCHERS,
} from "./server_hash.ts";
export {
  BUS_TOOL_NAME_RE,
  MAX_TOOL_NAME,
  mcpToolName,
  securityToolId,
  TOOL_SEPARATOR,
} from "./tool_name.ts";
export { type ArgumentPath, argumentPaths } from "./argument_paths.ts";
export {
  checkPaths,
  parseGrants,
  type PathGuardOptions,
  type PathVerdict,
  type SchemeRoots,
} from "./path_guard.ts";
export {
  type McpElicitor,
  type McpElicitQuestion,
  type McpElicitScope,
  relayElicitation,
} from "./elicit_relay.ts";
export { discardLogSink, fileLogSink } from "./mcp_log.ts";
export { McpCode, McpError, type McpErrorData } from "./errors.ts";
