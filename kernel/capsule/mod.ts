/**
 * The capsule runtime's declarative half: `Capsule.toml` parsed into a typed, validated
 * {@link CapsuleManifest} (schema in `docs/capsule_manifest.md`), the bus ACL and interceptor
 * bindings a manifest grants, semantic versions and ranges, the load order (Kahn over
 * imports/exports), install records and their discovery, installing and removing them (with
 * `[env]` values, export conflicts and dependents), the content-addressed binary store and the
 * `.capsule` archive (`docs/capsule_format.md`). And its running half (`docs/capsule_runtime.md`):
 * the {@link CapsuleRegistry} (load passes per scope, uplinks, unload/reload, health, workspace
 * trust), the dispatch encodings between the bus and handler exports, cron, and the
 * {@link CapsuleHostServices} each host call is resolved with.
 *
 * It leaves to others: executing modules (`engine/wasm/`, `engine/static/`, each with its own
 * `mod.ts`), what each host function does and its security gate (`host_abi/`), asking the
 * operator (the CLI), and building archives (`sdk/build/`, which calls {@link writeArchive}).
 *
 * @module
 */
export {
  type CapabilitiesSection,
  CAPSULE_NAME_RE,
  type CapsuleManifest,
  type CommandEntry,
  type CronEntry,
  DEFAULT_HANDLER_PRIORITY,
  ENV_TYPES,
  type EnvField,
  type EnvFieldType,
  type ExportEntry,
  IDENTITY_LEVELS,
  identityAllows,
  type IdentityLevel,
  type ImportEntry,
  isUplinkCapsule,
  type JsonObject,
  type McpServerEntry,
  type PackageSection,
  type PublishEntry,
  type SkillEntry,
  type StaticSection,
  type SubscribeEntry,
  TOOL_NAME_RE,
  type ToolEntry,
  TYPED_PREFIXES,
  UPLINK_PROFILES,
  type UplinkEntry,
  type UplinkProfile,
  type WasmSection,
} from "./manifest.ts";
export { MAX_MANIFEST_BYTES, parseManifest, type ParseManifestOptions } from "./manifest_parser.ts";
export { MANIFEST_SCHEMA } from "./manifest_schema.ts";
export {
  HANDLER_FAILED_TOPIC,
  type HandlerBinding,
  handlerBindings,
  manifestAcl,
  TOOL_DESCRIBE_TOPIC,
} from "./manifest_acl.ts";
export {
  compareVersions,
  formatVersion,
  isVersion,
  parseVersion,
  satisfies,
  type SemVer,
  VersionRange,
} from "./semver.ts";
export {
  type BlockedCapsule,
  effectiveExports,
  interfaceMatches,
  type LoadPlan,
  toposortCapsules,
  type ToposortOptions,
} from "./toposort.ts";
export { binaryAddress, BinaryStore, hashHex, MAX_BINARY_BYTES } from "./binary_store.ts";
export {
  checkRecord,
  type InstallMeta,
  type InstallRecord,
  parseInstallMeta,
  readInstallRecord,
  RECORD_MANIFEST,
  RECORD_META,
  writeInstallRecord,
} from "./install_record.ts";
export {
  type CapsuleScope,
  discoverCapsules,
  type DiscoveredCapsule,
  type DiscoverOptions,
  type Discovery,
  type DiscoveryProblem,
  readInstalledWasm,
  userCapsulesDir,
  workspaceCapsulesDir,
} from "./discovery.ts";
export {
  ARCHIVE_LIMITS,
  type ArchiveLimits,
  type ArchiveMember,
  type CapsuleArchive,
  HASHES_MEMBER,
  MANIFEST_MEMBER,
  readArchive,
  writeArchive,
} from "./capsule_archive.ts";
export {
  binaryReferences,
  capsulesDirFor,
  type CapsuleSource,
  type Dependent,
  dependentsOf,
  type ExportConflict,
  exportConflicts,
  installCapsule,
  type InstallOptions,
  type InstallResult,
  isRemoteSource,
  pickDeclared,
  resolveCapsuleSource,
  uninstallCapsule,
  type UninstallResult,
  workspaceRoots,
  workspaceRootsPath,
} from "./installer.ts";
export {
  capsuleEnvPath,
  checkCapsuleEnv,
  effectiveEnv,
  type EnvOwner,
  envServesEveryone,
  type EnvValue,
  type EnvValues,
  MAX_ENV_VALUE_CHARS,
  missingEnv,
  parseEnvText,
  readCapsuleEnv,
  removeCapsuleEnv,
  writeCapsuleEnv,
} from "./install_env.ts";
export {
  CapsuleRegistry,
  type CapsuleRegistryOptions,
  type LoadReport,
  type PassOptions,
  type ViewOptions,
} from "./capsule_registry.ts";
export {
  type CapsuleInfo,
  capsuleInfo,
  capsuleMetadata,
  type CapsuleState,
  type CommandInfo,
  type RegistryEntry,
  type ToolInfo,
} from "./capsule_info.ts";
export { type WasmLease, WasmShares } from "./wasm_shares.ts";
export {
  type CapsuleHealth,
  LoadedCapsule,
  type LoadedCapsuleDeps,
  type RunLoopState,
  type RuntimeLog,
} from "./loaded_capsule.ts";
export {
  type CapsuleInvocation,
  CAPSULES_LOADED_TOPIC,
  decodeInterceptorReply,
  decodeToolReply,
  describePayload,
  invocationContext,
  invocationPayload,
  messageScope,
  TOOL_DESCRIBE_RESPONSE_PREFIX,
  TOOL_EXECUTE_PREFIX,
  toolArguments,
  type ToolReply,
  toolRequestId,
  toolResultPayload,
} from "./capsule_dispatch.ts";
export {
  capsuleKey,
  type CapsuleScopeRef,
  scopeId,
  type ScopeKind,
  scopeServes,
  scopeVisibleTo,
  SYSTEM_SCOPE,
} from "./capsule_scope.ts";
export { CronSchedule } from "./cron_schedule.ts";
export { CronRunner, type CronRunnerOptions } from "./cron_runner.ts";
export {
  NO_WORKSPACE_TRUST,
  StoreWorkspaceTrust,
  TRUST_NAMESPACE,
  type TrustRecord,
  type TrustSubject,
  trustSubject,
  type WorkspaceTrust,
} from "./workspace_trust.ts";
export { WorkspaceDirectory } from "./workspace_directory.ts";
export {
  CapsuleHostServices,
  type CapsuleHostServicesOptions,
  NO_SESSION_PREFIX,
  NO_WORKSPACE,
  type ServiceScope,
} from "./host_services.ts";
export {
  CapsuleCode,
  CapsuleError,
  type CapsuleErrorData,
  formatIssue,
  ManifestError,
  type ManifestIssue,
} from "./errors.ts";
