/**
 * Errors of glob patterns and capability tokens.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/capabilities/`. */
export const CapabilityCode = {
  /** A glob pattern cannot be compiled; `data.pattern`, `data.position` (0-based UTF-16 offset). */
  GLOB_INVALID: "GLOB_INVALID",
  /** A token or one of its fields is not of the documented form; `data.field`, `data.tokenId`. */
  TOKEN_MALFORMED: "TOKEN_MALFORMED",
  /** The token's issuer key is not one of the trusted issuers; `data.tokenId`, `data.issuer`. */
  TOKEN_UNTRUSTED_ISSUER: "TOKEN_UNTRUSTED_ISSUER",
  /** The signature does not verify under the issuer key (a field or the signature was altered); `data.tokenId`. */
  TOKEN_FORGED: "TOKEN_FORGED",
  /** The token was revoked; `data.tokenId`. */
  TOKEN_REVOKED: "TOKEN_REVOKED",
  /** The clock is before `not_before`; `data.tokenId`, `data.now`, `data.notBefore`. */
  TOKEN_NOT_YET_VALID: "TOKEN_NOT_YET_VALID",
  /** The clock is at or past `expires_at`; `data.tokenId`, `data.now`, `data.expiresAt`. */
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  /** The token belongs to another principal; `data.tokenId`, `data.principal` (the requester). */
  TOKEN_PRINCIPAL_MISMATCH: "TOKEN_PRINCIPAL_MISMATCH",
  /** The token does not grant the requested permission; `data.tokenId`, `data.permission`. */
  TOKEN_PERMISSION_MISMATCH: "TOKEN_PERMISSION_MISMATCH",
  /** The token's resource pattern does not match the resource; `data.tokenId`, `data.resource`. */
  TOKEN_RESOURCE_MISMATCH: "TOKEN_RESOURCE_MISMATCH",
  /** A different token is already stored under the same id; `data.tokenId`, `data.principal`. */
  TOKEN_ID_CONFLICT: "TOKEN_ID_CONFLICT",
} as const;

/** A code of {@link CapabilityCode}. */
export type CapabilityCode = typeof CapabilityCode[keyof typeof CapabilityCode];

/** Structured detail of a {@link CapabilityError}; which keys are set depends on the code. */
export interface CapabilityErrorData {
  /** The glob pattern that failed to compile. */
  pattern?: string;
  /** 0-based UTF-16 offset in `pattern` where the problem was found. */
  position?: number;
  /** The id of the token concerned (when it has a well-formed one). */
  tokenId?: string;
  /** The token field that is malformed. */
  field?: string;
  /** Hex public key of an untrusted issuer. */
  issuer?: string;
  /** The clock reading (ms since the epoch) the check used. */
  now?: number;
  /** The token's `not_before`. */
  notBefore?: number;
  /** The token's `expires_at`. */
  expiresAt?: number;
  /** The requesting principal. */
  principal?: string;
  /** The requested permission. */
  permission?: string;
  /** The requested resource. */
  resource?: string;
}

/** Raised by glob compilation, token minting, verification, parsing and the token store. */
export class CapabilityError extends AstridError<CapabilityCode, CapabilityErrorData> {}
