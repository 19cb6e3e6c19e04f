/**
 * Errors without exceptions.
 *
 * AssemblyScript cannot catch: `throw` aborts the whole invocation. So every SDK call that
 * can fail returns its failure as a value — {@link Result} when it produces something,
 * {@link Outcome} when it does not — carrying a {@link HostError} with the host's status
 * code and message. Check `.ok`/`.isErr`, branch on `error.status`, or call `.unwrap()`
 * to get the value and abort the invocation with the error's text when there is none
 * (the abort is logged at `error` level and the invocation fails with `WASM_TRAP`).
 */
import { Status, knownStatus, statusName } from "./status";

/** A failed host call (or a failure a capsule reports): a status code and a message. */
export class HostError {
  /** A {@link Status} code (never `OK`). */
  status: u32;
  /** What went wrong, for the capsule's author (sentence case, the bad value quoted). */
  message: string;
  /** The SDK function that failed, e.g. `"kv.get"` (empty for capsule-made errors). */
  op: string;

  constructor(status: u32, message: string, op: string = "") {
    this.status = knownStatus(status);
    this.message = message;
    this.op = op;
  }

  /** The status name: `"NOT_FOUND"`, `"DENIED"`, … */
  get code(): string {
    return statusName(this.status);
  }

  /** True when the status is `status`. */
  is(status: u32): bool {
    return this.status == status;
  }

  /** `"kv.get: NOT_FOUND: Key \"a\" does not exist"`. */
  toString(): string {
    const head = this.op.length > 0 ? this.op + ": " : "";
    return head + this.code + ": " + this.message;
  }
}

/** The zero value of `T` (null for references): what a failed result holds. */
// @ts-ignore: decorator
@inline
function zeroOf<T>(): T {
  if (isReference<T>()) return changetype<T>(<usize>0);
  // @ts-ignore: a numeric or bool T
  return <T>0;
}

/** A value, or the {@link HostError} that prevented it. */
export class Result<T> {
  /** The error, or null on success. */
  readonly error: HostError | null;
  private readonly _value: T;

  private constructor(value: T, error: HostError | null) {
    this._value = value;
    this.error = error;
  }

  /** A success holding `value`. */
  static ok<T>(value: T): Result<T> {
    return new Result<T>(value, null);
  }

  /** A failure holding `error`. */
  static err<T>(error: HostError): Result<T> {
    return new Result<T>(zeroOf<T>(), error);
  }

  /** A failure made by the capsule: `status` (default `INVALID_ARGUMENT`) and `message`. */
  static fail<T>(message: string, status: u32 = Status.INVALID_ARGUMENT): Result<T> {
    return new Result<T>(zeroOf<T>(), new HostError(status, message));
  }

  /** True on success. */
  get ok(): bool {
    return this.error === null;
  }

  /** True on failure. */
  get isErr(): bool {
    return this.error !== null;
  }

  /** The value; aborts the invocation with the error's text on failure. */
  unwrap(): T {
    const error = this.error;
    if (error !== null) abort(error.toString());
    return this._value;
  }

  /** The value; on failure aborts with `context` and the error's text. */
  expect(context: string): T {
    const error = this.error;
    if (error !== null) abort(context + ": " + error.toString());
    return this._value;
  }

  /** The value, or `fallback` on failure. */
  unwrapOr(fallback: T): T {
    return this.error === null ? this._value : fallback;
  }

  /** The same failure as another result type (for passing an error up). */
  cast<U>(): Result<U> {
    const error = this.error;
    if (error === null) abort("Result.cast() called on a success");
    return Result.err<U>(error!);
  }
}

/** Success or the {@link HostError} of a call that produces no value. */
export class Outcome {
  /** The error, or null on success. */
  readonly error: HostError | null;

  constructor(error: HostError | null = null) {
    this.error = error;
  }

  /** A success. */
  static done(): Outcome {
    return new Outcome(null);
  }

  /** A failure made by the capsule: `status` (default `INVALID_ARGUMENT`) and `message`. */
  static fail(message: string, status: u32 = Status.INVALID_ARGUMENT): Outcome {
    return new Outcome(new HostError(status, message));
  }

  /** True on success. */
  get ok(): bool {
    return this.error === null;
  }

  /** True on failure. */
  get isErr(): bool {
    return this.error !== null;
  }

  /** Aborts the invocation with the error's text on failure. */
  unwrap(): void {
    const error = this.error;
    if (error !== null) abort(error.toString());
  }

  /** On failure aborts with `context` and the error's text. */
  expect(context: string): void {
    const error = this.error;
    if (error !== null) abort(context + ": " + error.toString());
  }
}
