/**
 * Errors of the capsule compiler and scaffolder (`astrid build`, `astrid capsule new`).
 *
 * @module
 */
import { AstridError } from "../../kernel/errors.ts";

/** Codes raised by `sdk/build/`. */
export const BuildCode = {
  /** The directory has no `Capsule.toml`, or the entry file is missing; `data.path`. */
  BUILD_NO_CAPSULE: "BUILD_NO_CAPSULE",
  /** The AssemblyScript compiler (or the entry-point transform) reported errors; `data.diagnostics` (each `file`, `line`, `column`, `code`, `message`). */
  BUILD_COMPILE_FAILED: "BUILD_COMPILE_FAILED",
  /** The module imports something outside the host ABI (`env.*`, an unknown `astrid.*`, a wrong type); `data.imports` (each `module`, `name`, `problem`). */
  BUILD_IMPORT_DENIED: "BUILD_IMPORT_DENIED",
  /** `Capsule.toml` and the module's entry points disagree (a declared tool without an implementation, or the reverse; a missing handler export; an interceptor's topic or priority); `data.problems` (each a message). */
  BUILD_MANIFEST_MISMATCH: "BUILD_MANIFEST_MISMATCH",
  /** A tool's `input_schema` in `Capsule.toml` disagrees with the one derived from its argument class; `data.tool`, `data.problems`. */
  BUILD_SCHEMA_MISMATCH: "BUILD_SCHEMA_MISMATCH",
  /** `[wasm] hash` pins a hash the built module does not have; `data.expected`, `data.actual`. */
  BUILD_HASH_MISMATCH: "BUILD_HASH_MISMATCH",
  /** `astrid capsule new` was given an unknown template; `data.template`. */
  SCAFFOLD_UNKNOWN_TEMPLATE: "SCAFFOLD_UNKNOWN_TEMPLATE",
  /** `astrid capsule new` would overwrite an existing, non-empty directory; `data.path`. */
  SCAFFOLD_EXISTS: "SCAFFOLD_EXISTS",
  /** A capsule name for `astrid capsule new` is invalid; `data.name`. */
  SCAFFOLD_BAD_NAME: "SCAFFOLD_BAD_NAME",
} as const;

/** A code of {@link BuildCode}. */
export type BuildCode = typeof BuildCode[keyof typeof BuildCode];

/** Structured detail of a {@link BuildError}. */
export interface BuildErrorData {
  /** The file or directory concerned. */
  path?: string;
  /** Compiler diagnostics, for `BUILD_COMPILE_FAILED`. */
  diagnostics?: readonly CompileDiagnostic[];
  /** Offending imports, for `BUILD_IMPORT_DENIED`. */
  imports?: readonly { module: string; name: string; problem: string }[];
  /** One message per problem, for `BUILD_MANIFEST_MISMATCH` and `BUILD_SCHEMA_MISMATCH`. */
  problems?: readonly string[];
  /** The tool concerned. */
  tool?: string;
  /** Expected and actual hashes. */
  expected?: string;
  /** The hash found. */
  actual?: string;
  /** The template asked for. */
  template?: string;
  /** The name refused. */
  name?: string;
}

/** One message of the AssemblyScript compiler, located. */
export interface CompileDiagnostic {
  /** `error`, `warning` or `info`. */
  severity: "error" | "warning" | "info";
  /** The compiler's code (`AS100`, `TS2304`, …). */
  code: string;
  /** The message. */
  message: string;
  /** The file, relative to the capsule directory (`~lib/…` for library files), if any. */
  file?: string;
  /** 1-based line. */
  line?: number;
  /** 1-based column. */
  column?: number;
}

/** `assembly/index.ts:3:7: error TS2304: Cannot find name 'x'`. */
export function formatDiagnostic(d: CompileDiagnostic): string {
  const where = d.file === undefined
    ? ""
    : `${d.file}${d.line !== undefined ? `:${d.line}:${d.column ?? 1}` : ""}: `;
  return `${where}${d.severity} ${d.code}: ${d.message}`;
}

/** An error of the capsule compiler or scaffolder. */
export class BuildError extends AstridError<BuildCode, BuildErrorData> {
  /** Creates an error with `code`, a sentence-case message and data. */
  constructor(
    code: BuildCode,
    message: string,
    options: { data?: BuildErrorData; cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}
