/**
 * The static engine: a capsule's `[static]` context files, `[[skill]]` files and file-backed
 * `[[command]]`s, loaded without a VM from its install record (no symlinks followed, UTF-8,
 * size-capped) and listed for the prompt builder. Which capsules are loaded and visible to whom
 * is the registry's business (`kernel/capsule/capsule_registry.ts`).
 *
 * @module
 */
export {
  DEFAULT_STATIC_LIMITS,
  hasStaticContent,
  readStaticContent,
  type StaticCommand,
  type StaticContent,
  type StaticContextFile,
  StaticEngine,
  type StaticFilter,
  type StaticLimits,
  type StaticSkill,
  type StaticSource,
} from "./static_engine.ts";
export { StaticCode, StaticError, type StaticErrorData } from "./errors.ts";
