/**
 * Errors of the fake LLM servers: a script that cannot be read or does not follow the format,
 * and bad standalone arguments.
 *
 * @module
 */
import { AstridError } from "../../kernel/mod.ts";

/** Codes raised by `tests/fakes/`. */
export const FakeCode = {
  /** The script file cannot be read; `data.file`. */
  FAKE_SCRIPT_UNREADABLE: "FAKE_SCRIPT_UNREADABLE",
  /** The script is not valid JSON; `data.file`, `data.line`, `data.column`. */
  FAKE_SCRIPT_SYNTAX: "FAKE_SCRIPT_SYNTAX",
  /** The script is JSON but breaks the format; `data.file`, `data.path` (JSON path), `data.line`. */
  FAKE_SCRIPT_INVALID: "FAKE_SCRIPT_INVALID",
  /** A standalone fake was started with bad arguments or options; `data.field`, `data.value`. */
  FAKE_ARGUMENT_INVALID: "FAKE_ARGUMENT_INVALID",
} as const;

/** A code of {@link FakeCode}. */
export type FakeCode = typeof FakeCode[keyof typeof FakeCode];

/** Structured detail of a {@link FakeError}. */
export type FakeErrorData = Readonly<Record<string, string | number>>;

/** An error of the fakes; branch on `code`. */
export class FakeError extends AstridError<FakeCode, FakeErrorData> {}
