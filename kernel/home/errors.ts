/**
 * Errors of the home folder and safe file writes.
 *
 * @module
 */
import { AstridError } from "../errors.ts";

/** Codes raised by `kernel/home/`. */
export const HomeCode = {
  /** Neither `$ASTRID_HOME` nor `$HOME` is set, or the path is not absolute; `data.source` says which. */
  HOME_UNRESOLVABLE: "HOME_UNRESOLVABLE",
  /** A directory of the layout could not be created or has the wrong mode; `data.path`. */
  HOME_LAYOUT: "HOME_LAYOUT",
  /** An atomic write failed; the target is untouched; `data.path`. */
  ATOMIC_WRITE_FAILED: "ATOMIC_WRITE_FAILED",
} as const;

/** A code of {@link HomeCode}. */
export type HomeCode = typeof HomeCode[keyof typeof HomeCode];

/** Raised when the Astrid home cannot be resolved, laid out or written. */
export class HomeError extends AstridError<HomeCode, { path?: string; source?: string }> {}
