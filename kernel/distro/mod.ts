/**
 * Distros: a `Distro.toml` names a curated set of capsules (with provider groups for a
 * multi-select, `{{ var }}` templates filling their `[env]`, `[invites]` and `[branding]`), and
 * `astrid init` installs it for a principal and pins the result in `Distro.lock`. This folder
 * owns the file format and its located errors (`docs/distros.md`), choosing capsules and
 * variables, the lock, and the install loop. It leaves to others: installing one capsule
 * (`capsule/`'s installer), asking the operator (the CLI, through hooks) and building capsules
 * (`sdk/build/`).
 *
 * @module
 */
export {
  type BrandingSection,
  DISTRO_NAME_RE,
  DISTRO_SCHEMA_VERSION,
  type DistroCapsule,
  type DistroGroup,
  type DistroManifest,
  type DistroSection,
  type InvitesSection,
  VARIABLE_NAME_RE,
  type VariableDef,
} from "./distro_manifest.ts";
export {
  loadDistro,
  MAX_DISTRO_BYTES,
  parseDistro,
  type ParseDistroOptions,
} from "./parse_distro.ts";
export { renderTemplate, templateProblem, templateVariables } from "./distro_template.ts";
export {
  DISTRO_LOCK_VERSION,
  type DistroLock,
  distroLockPath,
  formatDistroLock,
  type LockedCapsule,
  parseDistroLock,
  readDistroLock,
  sameLock,
  writeDistroLock,
} from "./distro_lock.ts";
export {
  capsuleEnvPreset,
  type DistroCapsuleOutcome,
  type DistroInstallReport,
  type DistroPlan,
  type DistroProgress,
  type DistroQuestion,
  findDistro,
  installDistro,
  type InstallDistroOptions,
  type LockMismatch,
  planDistro,
  resolveDistroSource,
  resolveVariables,
} from "./distro_installer.ts";
export {
  DistroCode,
  DistroError,
  type DistroErrorData,
  type DistroIssue,
  DistroManifestError,
} from "./errors.ts";
