/**
 * Time as a dependency: kernel code reads the time from a {@link Clock} it is given, so tests
 * drive time by hand instead of sleeping.
 *
 * @module
 */

/** A source of wall-clock time in milliseconds since the Unix epoch. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  #now: number;

  /** Starts the clock at `start` milliseconds since the epoch. */
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  /** The current manual time. */
  now(): number {
    return this.#now;
  }

  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.#now += ms;
  }

  /** Sets the clock to `ms` milliseconds since the epoch. */
  set(ms: number): void {
    this.#now = ms;
  }
}
