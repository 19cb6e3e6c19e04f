/**
 * The host ABI: the flat table of functions a capsule may import from the `astrid` module, one
 * file per subsystem, the manifest security gate every call passes, and the dispatcher the
 * WebAssembly engine calls. It owns the request/reply encoding and the closed status list
 * (`encoding.ts`, `status.ts`, shared with the capsule worker and the SDK), the row contract
 * (`host_function.ts`) and the builders of the services a call may use. It leaves running
 * modules to `kernel/capsule/engine/wasm/`, deciding sensitive actions to `kernel/security/`,
 * paths to `kernel/vfs/`, and building each call's context (which capsule, which principal,
 * which session) to the capsule registry. `docs/host_abi.md` is the reference.
 *
 * @module
 */
export {
  actionBase,
  authorizeOrThrow,
  type CapsuleBus,
  type CapsuleConfigView,
  type CapsuleLogs,
  defineHostFunction,
  type FlagCapability,
  type GateRequirement,
  type GateSpec,
  type HostAudit,
  type HostCallContext,
  type HostFunction,
  type HostFunctionRow,
  type HostLogLevel,
  type HostResult,
  type HostSecurity,
  type HostServices,
  type ScopedKv,
  type ServiceKey,
  serviceKey,
  type SessionScope,
  type SessionVfs,
  type Subsystem,
  SUBSYSTEMS,
  type TargetCapability,
} from "./host_function.ts";
export {
  buildTable,
  HOST_FUNCTION_NAMES,
  HOST_FUNCTIONS_BY_SUBSYSTEM,
  HOST_TABLE,
  hostFunction,
  hostFunctionSpecs,
  PENDING_FUNCTIONS,
} from "./table.ts";
export {
  type CompiledFsPattern,
  compileFsPattern,
  GATE_SCHEMES,
  type GateDenial,
  ManifestSecurityGate,
} from "./gate.ts";
export {
  createHostHandler,
  type HostErrorReporter,
  type HostHandlerOptions,
  type ResolveHostContext,
} from "./dispatcher.ts";
export {
  capsuleBus,
  createHostServices,
  DISCARD_LOGS,
  EMPTY_CONFIG,
  type HostServicesParts,
  openSessionVfs,
  type OpenSessionVfsOptions,
  provide,
  scopedKv,
  type ServiceEntry,
} from "./host_services.ts";
export { HandleTable, type HandleTableOptions } from "./handle_table.ts";
export { DEFAULT_HOST_LIMITS, type HostLimits } from "./limits.ts";
export { FS_FUNCTIONS, mapVfsError } from "./fs.ts";
export { HOST_TIMERS, IPC_FUNCTIONS, type MessageEnvelope } from "./ipc.ts";
export {
  UPLINK_FUNCTIONS,
  UPLINK_SERVICE,
  UplinkRegistry,
  type UplinkRegistryOptions,
  type UplinkService,
} from "./uplink.ts";
export { type HostIdentityStore, IDENTITY_FUNCTIONS, IDENTITY_SERVICE } from "./identity.ts";
export {
  BusElicitor,
  type BusElicitorOptions,
  CAPSULE_SECRETS,
  type CapsuleReadiness,
  type CapsuleSecretView,
  ELICITATION_SERVICE,
  type ElicitationService,
  EnvFileConfig,
  envFileLayers,
  envFilePath,
  type EnvReader,
  INVOCATION_ORIGIN,
  type InvocationOrigin,
  LIFECYCLE_FUNCTIONS,
  READINESS_SERVICE,
} from "./lifecycle.ts";
export { HOOKS_FUNCTIONS } from "./hooks.ts";
export {
  addressScope,
  DEFAULT_HTTP_LIMITS,
  HTTP_FUNCTIONS,
  HTTP_SERVICE,
  HTTP_STREAM_KIND,
  type HttpLimits,
  type HttpService,
  type ResolvedAddress,
} from "./http.ts";
export {
  DEFAULT_NET_LIMITS,
  MAX_SOCKET_PATH_BYTES,
  NET_FUNCTIONS,
  NET_LISTENER_KIND,
  NET_SERVICE,
  NET_STREAM_KIND,
  type NetLimits,
  type NetService,
} from "./net.ts";
export {
  DEFAULT_PROCESS_LIMITS,
  mapSandboxError,
  PROCESS_FUNCTIONS,
  PROCESS_HANDLE_KIND,
  PROCESS_SERVICE,
  type ProcessLimits,
  type ProcessService,
} from "./process.ts";
export { KV_FUNCTIONS } from "./kv.ts";
export { APPROVAL_FUNCTIONS, type ApprovalCall } from "./approval.ts";
export { CAPABILITY_NAMES, SECURITY_FUNCTIONS } from "./security.ts";
export { CLOCK_FUNCTIONS } from "./clock.ts";
export { RANDOM_FUNCTIONS } from "./random.ts";
export {
  CapsuleLogWriter,
  type CapsuleLogWriterOptions,
  type DaemonLogSink,
  guestLogSink,
  HOST_LOG_LEVELS,
  LOG_FUNCTIONS,
} from "./log.ts";
export {
  type DecodedReply,
  decodeFields,
  decodeReply,
  decodeText,
  encodeFields,
  encodeReply,
  encodeU32,
  encodeU64,
  type FieldInput,
  type GuestRegion,
  packRegion,
  PREFIX_BYTES,
  RequestReader,
  unpackRegion,
} from "./encoding.ts";
export {
  HostCallError,
  type HostCallErrorData,
  HostStatus,
  type HostStatusName,
  hostStatusName,
  isHostStatus,
} from "./status.ts";
export { HostAbiCode, HostAbiError, type HostAbiErrorData } from "./errors.ts";
