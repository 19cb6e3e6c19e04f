/**
 * Errors of the audit log.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/audit/`. */
export const AuditCode = {
  /** An entry's fields are not of the documented form; `data.field`. */
  AUDIT_BAD_ENTRY: "AUDIT_BAD_ENTRY",
  /** A stored record cannot be decoded; `data.principal`, `data.seq`. */
  AUDIT_MALFORMED: "AUDIT_MALFORMED",
  /** The chain head in the store moved under this writer (a second writer); `data.principal`. */
  AUDIT_CONFLICT: "AUDIT_CONFLICT",
  /** The log was used after `close()`. */
  AUDIT_CLOSED: "AUDIT_CLOSED",
} as const;

/** A code of {@link AuditCode}. */
export type AuditCode = typeof AuditCode[keyof typeof AuditCode];

/** Raised by the audit log. */
export class AuditError
  extends AstridError<AuditCode, { field?: string; principal?: string; seq?: number }> {}
