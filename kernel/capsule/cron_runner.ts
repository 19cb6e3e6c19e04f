/**
 * `CronRunner`: fires jobs on their {@link CronSchedule}s (UTC), one timer per job, from an
 * injected clock and timers (tests move a `ManualClock`). A job fires once per matching minute;
 * when the clock jumps past several firings (a suspended laptop) it fires once and goes on
 * from the present. A throwing job is reported and keeps its schedule.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Timers } from "../events/mod.ts";
import type { CronSchedule } from "./cron_schedule.ts";

/** Timers never take more than this (setTimeout's 32-bit limit). */
const MAX_DELAY_MS = 2 ** 31 - 1;

interface Job {
  readonly name: string;
  readonly schedule: CronSchedule;
  readonly fire: (at: number) => void | Promise<void>;
  timer?: unknown;
  next?: number;
}

/** Options of {@link CronRunner}. */
export interface CronRunnerOptions {
  /** Receives a job's failure (default: `console.error`). */
  onError?: (name: string, error: unknown) => void;
}

/** Runs scheduled jobs; see the module doc. */
export class CronRunner {
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #onError: (name: string, error: unknown) => void;
  readonly #jobs: Job[] = [];
  #stopped = false;

  /** A runner reading `clock` and scheduling with `timers`. */
  constructor(clock: Clock, timers: Timers, options: CronRunnerOptions = {}) {
    this.#clock = clock;
    this.#timers = timers;
    this.#onError = options.onError ??
      ((name, error) => console.error(`Cron job "${name}" failed:`, error));
  }

  /** Schedules `fire` (given the due time) on `schedule`; returns its first due time, if any. */
  add(
    name: string,
    schedule: CronSchedule,
    fire: (at: number) => void | Promise<void>,
  ): number | undefined {
    const job: Job = { name, schedule, fire };
    this.#jobs.push(job);
    this.#arm(job, this.#clock.now());
    return job.next;
  }

  /** The jobs and their next due times. */
  jobs(): { name: string; next?: number }[] {
    return this.#jobs.map((j) => ({ name: j.name, next: j.next }));
  }

  /** How many jobs are scheduled. */
  get size(): number {
    return this.#jobs.length;
  }

  /** Cancels every job. */
  stop(): void {
    this.#stopped = true;
    for (const j of this.#jobs) {
      if (j.timer !== undefined) this.#timers.clearTimeout(j.timer);
      j.timer = undefined;
      j.next = undefined;
    }
  }

  #arm(job: Job, after: number): void {
    if (this.#stopped) return;
    const next = job.schedule.next(after);
    job.next = next;
    if (next === undefined) return;
    const wait = () => {
      const delay = next - this.#clock.now();
      job.timer = this.#timers.setTimeout(() => {
        job.timer = undefined;
        if (this.#stopped) return;
        if (this.#clock.now() < next) return wait(); // a capped long wait: keep waiting
        this.#run(job, next);
        this.#arm(job, Math.max(next, this.#clock.now()));
      }, Math.min(Math.max(0, delay), MAX_DELAY_MS));
    };
    wait();
  }

  #run(job: Job, at: number): void {
    try {
      const r = job.fire(at);
      if (r instanceof Promise) r.catch((err) => this.#onError(job.name, err));
    } catch (err) {
      this.#onError(job.name, err);
    }
  }
}
