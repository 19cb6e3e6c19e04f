/**
 * Errors of the terminal frontend.
 *
 * @module
 */
import { AstridError } from "../kernel/mod.ts";

/** Codes raised by `cli/`. */
export const CliCode = {
  /** The command line is not of a verb's form; `data.verb`. Exit code 2. */
  USAGE: "USAGE",
} as const;

/** A code of {@link CliCode}. */
export type CliCode = typeof CliCode[keyof typeof CliCode];

/** Raised for a malformed command line; printed with the verb's usage. */
export class UsageError extends AstridError<CliCode, { verb: string }> {
  /** Creates a usage error for `verb`. */
  constructor(verb: string, message: string) {
    super(CliCode.USAGE, message, { data: { verb } });
  }
}
