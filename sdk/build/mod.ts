/**
 * The capsule compiler behind `astrid build` and the scaffolder behind `astrid capsule new`.
 * It owns compiling AssemblyScript capsules in-process (the guest SDK served as
 * `@astrid/sdk`, json-as, the entry-point transform that turns `@tool`, `@command`,
 * `@interceptor`, `@install`, `@upgrade` and `@run` functions into ABI exports and derives
 * tool input schemas), checking a module against the host ABI and its manifest, packing the
 * `.capsule` archive, the build cache, and the capsule templates. It leaves the archive format
 * and manifest parser to `kernel/capsule/`, and installing to the CLI.
 * `docs/capsule_authoring.md` is the guide.
 *
 * @module
 */
export {
  buildCapsule,
  type BuildOptions,
  type BuildResult,
  MANIFEST_FILE,
} from "./build_capsule.ts";
export { BuildCache, defaultBuildCacheDir, sdkFingerprint } from "./build_cache.ts";
export {
  ASC_VERSION,
  compileBareModule,
  compileCapsule,
  type CompileOptions,
  type CompileOutput,
  DEFAULT_ENTRY,
  RELEASE_FLAGS,
  SDK_PACKAGE,
  SDK_SOURCE_DIR,
} from "./compiler.ts";
export {
  ENTRY_DECORATORS,
  type EntryKind,
  type EntryPoint,
  type EntryPointOptions,
  entryPointTransform,
} from "./transform.ts";
export { applyToolSchemas, schemaDifferences, tomlInline } from "./manifest_schemas.ts";
export { manifestProblems, type ModuleFacts } from "./manifest_check.ts";
export { checkModule, handlerExports, type ImportProblem, importProblems } from "./wasm_check.ts";
export {
  BuildCode,
  BuildError,
  type BuildErrorData,
  type CompileDiagnostic,
  formatDiagnostic,
} from "./errors.ts";
export { scaffoldCapsule, type ScaffoldOptions } from "./scaffold.ts";
export { type CapsuleTemplate, TEMPLATE_NAMES, type TemplateName, TEMPLATES } from "./templates.ts";
