/**
 * A sliding-window rate limiter: at most `limit` events in any `windowMs` span. Mutating
 * management requests (`ReloadCapsules`) go through one; read-only ones do not.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { AstridError, CommonCode } from "../errors.ts";

/** What {@link SlidingWindowLimiter.take} decided. */
export type LimitDecision =
  /** Allowed and counted. */
  | { readonly allowed: true }
  /** Refused; the oldest counted event leaves the window in `retryAfterMs`. */
  | { readonly allowed: false; readonly retryAfterMs: number };

/** Allows at most `limit` events per sliding `windowMs`. */
export class SlidingWindowLimiter {
  /** Events allowed per window. */
  readonly limit: number;
  /** The window length in ms. */
  readonly windowMs: number;
  readonly #clock: Clock;
  #times: number[] = [];

  /** Creates a limiter reading time from `clock`. */
  constructor(clock: Clock, options: { limit: number; windowMs: number }) {
    if (!Number.isSafeInteger(options.limit) || options.limit <= 0) {
      throw new AstridError(
        CommonCode.INVALID_ARGUMENT,
        `Invalid limit "${options.limit}": must be a positive integer`,
        { data: { field: "limit" } },
      );
    }
    if (!(options.windowMs > 0)) {
      throw new AstridError(
        CommonCode.INVALID_ARGUMENT,
        `Invalid windowMs "${options.windowMs}": must be a positive number`,
        { data: { field: "windowMs" } },
      );
    }
    this.#clock = clock;
    this.limit = options.limit;
    this.windowMs = options.windowMs;
  }

  /** Counts one event now if the window has room. */
  take(): LimitDecision {
    const now = this.#clock.now();
    const from = now - this.windowMs;
    let drop = 0;
    while (drop < this.#times.length && this.#times[drop] <= from) drop++;
    if (drop > 0) this.#times = this.#times.slice(drop);
    if (this.#times.length >= this.limit) {
      return { allowed: false, retryAfterMs: this.#times[0] + this.windowMs - now };
    }
    this.#times.push(now);
    return { allowed: true };
  }
}
