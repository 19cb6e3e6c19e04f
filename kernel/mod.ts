/**
 * The kernel: everything privileged. Each concern is a folder with its own `mod.ts`
 * (`crypto/`, `storage/`, `config/`, `audit/`, `capabilities/`, `events/`, `home/`,
 * `identity/`); import those directly so a caller loads only what it uses. This surface holds
 * the few items every folder and frontend shares.
 *
 * @module
 */
export { AstridError, type AstridErrorOptions, CommonCode, hasCode } from "./errors.ts";
export { type Clock, ManualClock, systemClock } from "./clock.ts";
export { VERSION } from "./version.ts";
