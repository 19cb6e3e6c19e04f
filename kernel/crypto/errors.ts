/**
 * Errors of key handling and hashing.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/crypto/`. */
export const CryptoCode = {
  /** A key file is missing, unreadable, of the wrong length or too permissive; `data.path`. */
  KEY_INVALID: "KEY_INVALID",
  /** Bytes that should be hex, a public key or a signature are malformed; `data.field`. */
  MALFORMED: "MALFORMED",
} as const;

/** A code of {@link CryptoCode}. */
export type CryptoCode = typeof CryptoCode[keyof typeof CryptoCode];

/** Raised when key material or encoded crypto values are unusable. */
export class CryptoError extends AstridError<CryptoCode, { path?: string; field?: string }> {}
