/**
 * Timers as a dependency: the bus schedules request and interceptor timeouts through a
 * {@link Timers} it is given, so tests fire them by moving a {@link ManualClock} instead of
 * sleeping.
 *
 * @module
 */
import type { ManualClock } from "../clock.ts";

/** An opaque timer handle (a number, or Deno's `Timeout` object). */
export type TimerHandle = unknown;

/** Schedules and cancels one-shot callbacks. */
export interface Timers {
  /** Runs `callback` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancels a pending callback; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** The real timers (`globalThis.setTimeout`). */
export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/** Timers driven by a {@link ManualClock}: `advance()` moves the clock and fires what is due. */
export class ManualTimers implements Timers {
  readonly #clock: ManualClock;
  readonly #pending = new Map<number, { at: number; callback: () => void }>();
  #next = 1;

  /** Creates timers that read and move `clock`. */
  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  /** Schedules `callback` at the clock's now plus `ms`. */
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const handle = this.#next++;
    this.#pending.set(handle, { at: this.#clock.now() + Math.max(0, ms), callback });
    return handle;
  }

  /** Cancels a pending callback. */
  clearTimeout(handle: TimerHandle): void {
    this.#pending.delete(handle as number);
  }

  /** How many callbacks are scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Moves the clock by `ms`, firing every due callback in time order at its due time. */
  advance(ms: number): void {
    const end = this.#clock.now() + ms;
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.#pending) {
        if (entry[1].at <= end && (due === undefined || entry[1].at < due[1].at)) due = entry;
      }
      if (due === undefined) break;
      this.#pending.delete(due[0]);
      if (due[1].at > this.#clock.now()) this.#clock.set(due[1].at);
      due[1].callback();
    }
    this.#clock.set(end);
  }
}
