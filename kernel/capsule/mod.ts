/**
 * The capsule runtime's declarative half: `Capsule.toml` parsed into a typed, validated
 * {@link CapsuleManifest} (schema in `docs/capsule_manifest.md`), the bus ACL and interceptor
 * bindings a manifest grants, semantic versions and ranges, the load order (Kahn over
 * imports/exports), install records and their discovery, the content-addressed binary store
 * and the `.capsule` archive (`docs/capsule_format.md`).
 *
 * It leaves to others: running modules (`engine/`, with its own `mod.ts`), the host ABI and its
 * security gate (`host_abi/`), installing and removing (the CLI), and building archives
 * (`sdk/build/`, which calls {@link writeArchive}).
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
  CapsuleCode,
  CapsuleError,
  type CapsuleErrorData,
  formatIssue,
  ManifestError,
  type ManifestIssue,
} from "./errors.ts";
