/**
 * Errors of distros: `Distro.toml`, `Distro.lock` and installing a distro's capsules.
 *
 * @module
 */
import { AstridError } from "../errors.ts";
import { formatIssue, type ManifestIssue } from "../capsule/mod.ts";

/** Codes raised by `kernel/distro/`. */
export const DistroCode = {
  /** A `Distro.toml` is not valid TOML or breaks the schema; `data.file`, `data.issues` (every problem, located). */
  DISTRO_INVALID: "DISTRO_INVALID",
  /** No `Distro.toml` at the name or path given; `data.path`, `data.name`. */
  DISTRO_NOT_FOUND: "DISTRO_NOT_FOUND",
  /** A remote source (`@org/name`, a URL) was asked for; they are recorded but not fetched offline; `data.name`, `data.source`. */
  DISTRO_SOURCE_UNSUPPORTED: "DISTRO_SOURCE_UNSUPPORTED",
  /** `--group` names a group the distro does not define; `data.name`, `data.known`. */
  DISTRO_GROUP_UNKNOWN: "DISTRO_GROUP_UNKNOWN",
  /** A variable is unknown (`--var`), or required and has no value; `data.name`, `data.known`. */
  DISTRO_VARIABLE_INVALID: "DISTRO_VARIABLE_INVALID",
  /** A `Distro.lock` cannot be read or breaks its format; `data.file`, `data.field`. */
  DISTRO_LOCK_INVALID: "DISTRO_LOCK_INVALID",
  /** A capsule's source no longer matches what `Distro.lock` pins (run with `--update` to accept); `data.name`, `data.hash`, `data.actual`. */
  DISTRO_LOCK_MISMATCH: "DISTRO_LOCK_MISMATCH",
  /** A capsule of the distro does not match its entry (name, version range); `data.name`, `data.source`, `data.field`. */
  DISTRO_CAPSULE_INVALID: "DISTRO_CAPSULE_INVALID",
} as const;

/** A code of {@link DistroCode}. */
export type DistroCode = typeof DistroCode[keyof typeof DistroCode];

/** One located problem of a `Distro.toml` (the same shape as a manifest issue). */
export type DistroIssue = ManifestIssue;

/** Structured detail carried by a {@link DistroError}. */
export interface DistroErrorData {
  /** The file involved. */
  file?: string;
  /** Every problem of a `Distro.toml`, for `DISTRO_INVALID`. */
  issues?: readonly DistroIssue[];
  /** A path involved. */
  path?: string;
  /** The capsule, group or variable involved. */
  name?: string;
  /** A capsule source. */
  source?: string;
  /** Names that would have been accepted. */
  known?: readonly string[];
  /** A field involved. */
  field?: string;
  /** The pinned hash. */
  hash?: string;
  /** The hash found. */
  actual?: string;
}

/** Raised by `kernel/distro/`; callers branch on `code`. */
export class DistroError extends AstridError<DistroCode, DistroErrorData> {}

/** A `Distro.toml` that cannot be used: carries every problem found, each with file and line. */
export class DistroManifestError extends DistroError {
  /** Every problem found, in file order. */
  readonly issues: readonly DistroIssue[];

  /** Builds the error from its issues (at least one); the message lists them all. */
  constructor(file: string, issues: readonly DistroIssue[]) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(
      DistroCode.DISTRO_INVALID,
      `Invalid distro manifest "${file}": ${count}\n` +
        issues.map((i) => `  ${formatIssue(i)}`).join("\n"),
      { data: { file, issues } },
    );
    this.issues = issues;
  }
}
