/**
 * Errors of the native-command sandbox: when a command cannot be run over the session overlay
 * (no namespace, an overlay that cannot be a layer, a setup step the kernel refused) or when
 * its request is malformed. A command that runs and fails is not an error: its exit code is in
 * the result.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/sandbox/`. */
export const SandboxCode = {
  /** No namespace sandbox can be made here and the caller did not pass `allowUnsandboxed`; `data.reason`, `data.mechanism`. */
  SANDBOX_UNAVAILABLE: "SANDBOX_UNAVAILABLE",
  /** The session overlay writes marker whiteouts, which overlayfs cannot stack; `data.path` (the session dir), `data.format`. */
  SANDBOX_WHITEOUT_FORMAT: "SANDBOX_WHITEOUT_FORMAT",
  /** A path the mount options cannot carry (`,`, `:`, `\` or a newline in it); `data.path`, `data.field`. */
  SANDBOX_PATH_UNSUPPORTED: "SANDBOX_PATH_UNSUPPORTED",
  /** The argv, env, cwd or a limit is malformed; `data.field`. */
  SANDBOX_INVALID: "SANDBOX_INVALID",
  /** The working directory is not a directory inside the workspace view; `data.path`. */
  SANDBOX_CWD_INVALID: "SANDBOX_CWD_INVALID",
  /** Resolving denied paths walked more entries than allowed; `data.count`, `data.limit`. */
  SANDBOX_MASK_LIMIT: "SANDBOX_MASK_LIMIT",
  /** A namespace or mount step failed before the command started; `data.detail` (the setup log's last lines). */
  SANDBOX_SETUP_FAILED: "SANDBOX_SETUP_FAILED",
  /** The command could not be spawned at all (program missing, no `--allow-run`); `data.program`. */
  SANDBOX_SPAWN_FAILED: "SANDBOX_SPAWN_FAILED",
  /** Folding the command's upper dir into the session failed; `data.path` (the command's upper dir, kept for recovery). */
  SANDBOX_FOLD_FAILED: "SANDBOX_FOLD_FAILED",
} as const;

/** A code of {@link SandboxCode}. */
export type SandboxCode = typeof SandboxCode[keyof typeof SandboxCode];

/** Structured detail of a {@link SandboxError}; which keys are set depends on the code. */
export interface SandboxErrorData {
  /** Why the sandbox is unavailable (as `sandboxStatus().reason` says). */
  reason?: string;
  /** The mechanism that was tried. */
  mechanism?: string;
  /** A host path concerned. */
  path?: string;
  /** The request field at fault. */
  field?: string;
  /** The whiteout format found. */
  format?: string;
  /** A count that broke a limit. */
  count?: number;
  /** The limit beside `count`. */
  limit?: number;
  /** The last lines of the setup log. */
  detail?: string;
  /** The program that could not be spawned. */
  program?: string;
}

/** Raised by `kernel/sandbox/` when a command cannot be run as asked. */
export class SandboxError extends AstridError<SandboxCode, SandboxErrorData> {}
