/**
 * The audit log: every security decision, appended to a per-principal chain where each entry
 * is signed by the runtime key and holds the hash of the previous one. Owns the entry byte
 * format and chain verification; leaves deciding to `security/` and storing to `storage/`.
 *
 * @module
 */
export { AuditLog, type AuditLogOptions, auditNamespace, type ListOptions } from "./audit_log.ts";
export {
  type AuditEntry,
  type AuditInput,
  type Decision,
  DECISIONS,
  decodeRecord,
  encodeBody,
  ENTRY_TAG,
  GENESIS_HASH,
} from "./entry.ts";
export { type BreakKind, type ChainBreak, verifyChain, type VerifyReport } from "./verify.ts";
export { AuditCode, AuditError } from "./errors.ts";
