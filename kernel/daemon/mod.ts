/**
 * The daemon: the kernel process and its Unix socket. Owns the boot sequence and graceful
 * shutdown, `run/` (socket, session token, ready sentinel, instance lock), the wire protocol
 * between frontends and the kernel (frames, hello, methods, events, the client bus ACL;
 * `docs/protocol.md`), the protocol client every frontend uses, the management requests on
 * `astrid.v1.request.*`, connection and session tracking, idle and ephemeral shutdown, and the
 * principal registry (principals created on first use), the approval bridge that carries the
 * security pipeline's questions to the frontends attached to a session, and the session-overlay
 * service behind `astrid diff|commit|discard`. `docs/daemon.md` describes it.
 *
 * It leaves to others: what capsules are and how they run (`capsule/`, reached through the
 * {@link CapsuleHost} seam), what flows on the bus (`events/`, `docs/bus_topics.md`), security
 * decisions (`security/`), and spawning a daemon from the CLI (`cli/`).
 *
 * Importing this surface is cheap: the kernel's heavy folders (storage, audit, crypto, config,
 * the bus) load only when {@link bootDaemon} runs, so a client such as `astrid status` never
 * loads them.
 *
 * @module
 */
export {
  bootDaemon,
  type Daemon,
  type DaemonOptions,
  type KernelParts,
  type ShutdownInfo,
} from "./daemon.ts";
export {
  type CallOptions,
  ClientSubscription,
  type CloseInfo,
  type ConnectOptions,
  DaemonClient,
} from "./daemon_client.ts";
export {
  encodeFrame,
  FrameDecoder,
  HELLO_MAX_FRAME_BYTES,
  MAX_FRAME_BYTES,
} from "./frame_codec.ts";
export {
  AGENT_CANCEL_TOPIC,
  AGENT_DELTA_TOPIC,
  AGENT_RESPONSE_TOPIC,
  AGENT_TOOL_CALL_TOPIC,
  AGENT_TOOL_RESULT_TOPIC,
  APPROVAL_RESPONSE_PREFIX,
  APPROVAL_TOPIC,
  APPROVAL_UNANSWERABLE_TOPIC,
  type ByeFrame,
  CAPSULES_LOADED_TOPIC,
  CLIENT_CONNECT_TOPIC,
  CLIENT_DISCONNECT_TOPIC,
  CLIENT_PUBLISH_ALLOW,
  CLIENT_SUBSCRIBE_ALLOW,
  type ClientFrame,
  type DaemonStatusWire,
  ELICIT_RESPONSE_PREFIX,
  ELICIT_TOPIC_PREFIX,
  type ErrorFrame,
  type EventFrame,
  FATAL_WIRE_CODES,
  HANDLER_FAILED_TOPIC,
  type HelloFrame,
  type JsonValue,
  MANAGEMENT_TOPIC_PREFIX,
  ManagementRequest,
  Method,
  PROTOCOL_VERSION,
  type RequestFrame,
  type RequestId,
  type ResponseFrame,
  type ServerFrame,
  SESSION_ENDED_TOPIC,
  SESSION_ID_RE,
  SHUTDOWN_TOPIC,
  USER_PROMPT_TOPIC,
  type WelcomeFrame,
  WireCode,
  type WireError,
} from "./protocol.ts";
export {
  checkSocketPath,
  type EnvReader,
  locateHome,
  type RunPaths,
  runPaths,
  sunPathLimit,
} from "./run_paths.ts";
export {
  type CapsuleHost,
  type CapsuleSummary,
  type CommandSummary,
  EmptyCapsuleHost,
  type ReloadReport,
} from "./capsule_host.ts";
export {
  type AttachResult,
  ConnectionTracker,
  type TrackedConnection,
} from "./connection_tracker.ts";
export {
  DEFAULT_EPHEMERAL_GRACE_MS,
  DEFAULT_EPHEMERAL_START_GRACE_MS,
  IdleMonitor,
  type IdleMonitorOptions,
} from "./idle_monitor.ts";
export { type LimitDecision, SlidingWindowLimiter } from "./sliding_window_limiter.ts";
// Types only: the bridge's code (security, VFS) stays out of the CLI's import graph.
export type {
  ApprovalBridge,
  ApprovalBridgeOptions,
  AttachedFrontend,
  AuthorizingPipeline,
  BridgeLog,
  FrontendFlags,
} from "./approval_bridge.ts";
export type {
  OverlayScope,
  OverlayService,
  OverlayServiceOptions,
  SettleScope,
} from "./overlay_service.ts";
export { DaemonCode, DaemonError, type DaemonErrorData } from "./errors.ts";
