/**
 * Timers driven by a {@link ManualClock}, for this folder's tests (structurally `EngineTimers`).
 *
 * @module
 */
import type { ManualClock } from "../../../clock.ts";
import type { EngineTimers } from "./wasm_instance.ts";

/** Fires callbacks only when `advance()` moves the clock past their due time. */
export class ManualEngineTimers implements EngineTimers {
  readonly #clock: ManualClock;
  readonly #pending = new Map<number, { at: number; callback: () => void }>();
  #next = 1;

  /** Timers reading and moving `clock`. */
  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  /** Schedules `callback` at now + `ms`. */
  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.#next++;
    this.#pending.set(handle, { at: this.#clock.now() + Math.max(0, ms), callback });
    return handle;
  }

  /** Cancels a pending callback. */
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  /** Callbacks scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Moves the clock by `ms`, firing what falls due in time order. */
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
