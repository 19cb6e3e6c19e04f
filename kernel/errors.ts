/**
 * The base of every error Astrid raises on purpose.
 *
 * Each kernel folder declares its own subclass and codes in its `errors.ts`; callers branch on
 * `code`, never on the message. Codes are never renamed or reused.
 *
 * @module
 */

/** Options accepted by {@link AstridError}. */
export interface AstridErrorOptions<D> {
  /** Structured detail for callers and logs (never secrets). */
  data?: D;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** An error with a stable machine-readable `code` and structured `data`. */
export class AstridError<C extends string = string, D = unknown> extends Error {
  /** The stable code callers branch on. */
  readonly code: C;
  /** Structured detail about the failure. */
  readonly data: D | undefined;

  /** Creates an error with a code, a sentence-case message and optional data and cause. */
  constructor(code: C, message: string, options: AstridErrorOptions<D> = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.data = options.data;
  }
}

/** Codes shared by every subsystem. */
export const CommonCode = {
  /** Something unexpected failed; details are logged, not returned. */
  INTERNAL: "INTERNAL",
  /** A caller passed a value that is not of the expected form; `data.field` names it. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
} as const;

/** Returns true when `err` is an {@link AstridError} carrying `code`. */
export function hasCode(err: unknown, code: string): err is AstridError {
  return err instanceof AstridError && err.code === code;
}
