/**
 * Errors of the identity store: principals and the links between outside identities
 * (`platform` + `platform_user_id`) and principals.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/identity/`. */
export const IdentityCode = {
  /** A platform name or platform user id is malformed; `data.field`, `data.value` (cut to 64 characters). */
  IDENTITY_INVALID: "IDENTITY_INVALID",
  /** The principal is not recorded in the identity store; `data.principal`. */
  IDENTITY_PRINCIPAL_NOT_FOUND: "IDENTITY_PRINCIPAL_NOT_FOUND",
  /** `createUser` named an id that is already recorded; `data.principal`. */
  IDENTITY_PRINCIPAL_EXISTS: "IDENTITY_PRINCIPAL_EXISTS",
  /** The outside identity is already linked to another principal; `data.platform`, `data.platform_user_id`, `data.principal` (the current owner). */
  IDENTITY_LINK_CONFLICT: "IDENTITY_LINK_CONFLICT",
  /** The outside identity is not linked (or not to the principal named); `data.platform`, `data.platform_user_id`. */
  IDENTITY_LINK_NOT_FOUND: "IDENTITY_LINK_NOT_FOUND",
  /** A write kept racing with other writers and gave up; `data.operation`, `data.attempts`. */
  IDENTITY_CONTENDED: "IDENTITY_CONTENDED",
} as const;

/** A code of {@link IdentityCode}. */
export type IdentityCode = typeof IdentityCode[keyof typeof IdentityCode];

/** Structured detail of an {@link IdentityError}. */
export type IdentityErrorData = Readonly<Record<string, string | number>>;

/** An error of the identity store; branch on `code`. */
export class IdentityError extends AstridError<IdentityCode, IdentityErrorData> {}
