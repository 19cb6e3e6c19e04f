/**
 * Errors of the capsule runtime: manifests, load order, the binary store, install records and
 * `.capsule` archives. The WebAssembly engine (`engine/`) has its own.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/capsule/` (outside `engine/`). */
export const CapsuleCode = {
  /** A `Capsule.toml` is not valid TOML or breaks the schema; `data.file`, `data.issues` (every problem). */
  MANIFEST_INVALID: "MANIFEST_INVALID",
  /** The import graph of the capsules to load has a cycle; `data.cycle` (names in order, first repeated last). */
  CAPSULE_CYCLE: "CAPSULE_CYCLE",
  /** Two capsules given to one load share a name; `data.name`. */
  CAPSULE_DUPLICATE: "CAPSULE_DUPLICATE",
  /** A stored binary's bytes do not hash to its address, or a pinned hash does not match; `data.hash`, `data.actual`, `data.path`. */
  BINARY_HASH_MISMATCH: "BINARY_HASH_MISMATCH",
  /** No binary is stored under a hash; `data.hash`, `data.path`. */
  BINARY_NOT_FOUND: "BINARY_NOT_FOUND",
  /** A binary is larger than the store accepts (64 MiB); `data.limit`, `data.path` when reading. */
  BINARY_TOO_LARGE: "BINARY_TOO_LARGE",
  /** A hash is not of the form `blake3:<64 hex>` (or bare hex where allowed); `data.hash`. */
  BINARY_BAD_HASH: "BINARY_BAD_HASH",
  /** An install record (`meta.json` + `Capsule.toml`) is missing, malformed or inconsistent; `data.dir`, `data.field`. */
  INSTALL_RECORD_INVALID: "INSTALL_RECORD_INVALID",
  /** A `.capsule` archive is malformed, hostile, over a limit or fails its `HASHES`; `data.member`, `data.reason`, `data.limit`. */
  ARCHIVE_INVALID: "ARCHIVE_INVALID",
  /** A capsule was not loaded: an unmet import or a dependency cycle (load plan); `data.name`, `data.reason`, `data.cycle`. */
  CAPSULE_BLOCKED: "CAPSULE_BLOCKED",
  /** Loading or binding an installed capsule failed (engine, handler export missing, bus binding); `data.name`, `data.reason`. */
  CAPSULE_LOAD_FAILED: "CAPSULE_LOAD_FAILED",
  /** An uplink capsule did not call `signal_ready` in time, or its run loop ended first; `data.name`, `data.limit` (ms). */
  CAPSULE_NOT_READY: "CAPSULE_NOT_READY",
  /** A workspace capsule the operator has not trusted (or that changed since): not loaded; `data.name`, `data.dir`, `data.hash`. */
  CAPSULE_UNTRUSTED: "CAPSULE_UNTRUSTED",
  /** A handler export's reply cannot be decoded (short, unknown action, bad JSON, error status); `data.name` (`capsule.export`), `data.reason`. */
  CAPSULE_BAD_REPLY: "CAPSULE_BAD_REPLY",
  /** No capsule of that name is known to the registry (reload, unload); `data.name`. */
  CAPSULE_NOT_FOUND: "CAPSULE_NOT_FOUND",
  /** A cron schedule cannot be parsed or never fires; `data.field` (the schedule), `data.reason`. */
  CRON_INVALID: "CRON_INVALID",
  /** A path to install from is not a `.capsule`, a directory with `dist/*.capsule`, or is remote (offline); `data.path`, `data.reason`. */
  INSTALL_SOURCE_INVALID: "INSTALL_SOURCE_INVALID",
  /** `[env]` values miss a required field or break a field's type, or an env file is malformed; `data.name`, `data.path`, `data.reason`. */
  INSTALL_ENV_INVALID: "INSTALL_ENV_INVALID",
  /** A capsule exports what an installed capsule already exports and replacing it was not confirmed; `data.name`, `data.capsules`. */
  INSTALL_EXPORT_CONFLICT: "INSTALL_EXPORT_CONFLICT",
  /** Removing a capsule would leave required imports of installed capsules unmet (no `--force`); `data.name`, `data.capsules`. */
  INSTALL_HAS_DEPENDENTS: "INSTALL_HAS_DEPENDENTS",
  /** No install record of that name in the scope (remove, update); `data.name`, `data.dir`. */
  CAPSULE_NOT_INSTALLED: "CAPSULE_NOT_INSTALLED",
} as const;

/** A code of {@link CapsuleCode}. */
export type CapsuleCode = typeof CapsuleCode[keyof typeof CapsuleCode];

/** One problem of a manifest: where it is, which field, what is wrong and how to fix it. */
export interface ManifestIssue {
  /** The manifest file as given to the parser. */
  readonly file: string;
  /** 1-based line of the offending key or table, when it could be located. */
  readonly line?: number;
  /** 1-based column of that key, when known. */
  readonly column?: number;
  /** The field, as a TOML-like path: `package.name`, `tool[1].input_schema`, `publish."a.b".wit`. */
  readonly field: string;
  /** What is wrong, with the bad value quoted. */
  readonly problem: string;
  /** How to fix it (may be a "did you mean" hint). */
  readonly fix?: string;
}

/** Structured detail carried by a {@link CapsuleError}. */
export interface CapsuleErrorData {
  /** The file involved (manifest, record, archive), if any. */
  file?: string;
  /** Every problem of a manifest, for `MANIFEST_INVALID`. */
  issues?: readonly ManifestIssue[];
  /** Capsule names of a cycle in order, the first repeated at the end, for `CAPSULE_CYCLE`. */
  cycle?: readonly string[];
  /** The capsule involved, if any. */
  name?: string;
  /** The expected hash, `blake3:<hex>`. */
  hash?: string;
  /** The hash actually computed. */
  actual?: string;
  /** A filesystem path involved. */
  path?: string;
  /** An install directory involved. */
  dir?: string;
  /** A field of an install record. */
  field?: string;
  /** An archive member involved. */
  member?: string;
  /** Why an archive was refused. */
  reason?: string;
  /** The limit that was exceeded, if any. */
  limit?: number;
  /** Other capsules involved: the conflicting exporters, or the dependents. */
  capsules?: readonly string[];
}

/** Raised by the capsule runtime; callers branch on `code`. */
export class CapsuleError extends AstridError<CapsuleCode, CapsuleErrorData> {}

/** Formats one issue as `file:line: field: problem; fix`. */
export function formatIssue(issue: ManifestIssue): string {
  const where = issue.line !== undefined ? `${issue.file}:${issue.line}` : issue.file;
  return `${where}: ${issue.field}: ${issue.problem}` + (issue.fix ? `; ${issue.fix}` : "");
}

/** A manifest that cannot be used: carries every problem found, not only the first. */
export class ManifestError extends CapsuleError {
  /** Every problem found, in file order. */
  readonly issues: readonly ManifestIssue[];

  /** Builds the error from its issues (at least one); the message lists them all. */
  constructor(file: string, issues: readonly ManifestIssue[]) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(
      CapsuleCode.MANIFEST_INVALID,
      `Invalid capsule manifest "${file}": ${count}\n` +
        issues.map((i) => `  ${formatIssue(i)}`).join("\n"),
      { data: { file, issues } },
    );
    this.issues = issues;
  }
}
