/**
 * The storm monitor: counts publishes per topic over a window and warns, naming the hottest
 * topics, when the window's rate exceeds a threshold while no client is attached — the
 * signature of a feedback loop between capsules.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { type BusLogger, stderrLogger } from "./bus_logger.ts";
import { BusCode, BusError } from "./errors.ts";

/** Options of a {@link StormMonitor}. */
export interface StormMonitorOptions {
  /** Where time comes from. */
  clock: Clock;
  /** True while any client (CLI, uplink session) is attached; storms are only warned without. */
  clientAttached: () => boolean;
  /** Messages per second, averaged over a window, above which it warns; default 100. */
  thresholdPerSecond?: number;
  /** The window length; default 5,000 ms. */
  windowMs?: number;
  /** How many topics the warning names; default 5. */
  topTopics?: number;
  /** Distinct topics counted per window; further ones are counted as `(other)`; default 1,024. */
  maxTrackedTopics?: number;
  /** Where the warning goes; default stderr. */
  logger?: BusLogger;
}

/** What a window that crossed the threshold looked like. */
export interface StormReport {
  /** Messages per second over the window. */
  readonly rate: number;
  /** Messages counted in the window. */
  readonly total: number;
  /** The window's actual length in milliseconds. */
  readonly windowMs: number;
  /** The hottest topics, hottest first. */
  readonly topics: readonly { readonly topic: string; readonly count: number }[];
}

const OTHER = "(other)";

/** Watches the publish rate; the bus calls {@link record} for every accepted publish. */
export class StormMonitor {
  readonly #clock: Clock;
  readonly #clientAttached: () => boolean;
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #top: number;
  readonly #maxTopics: number;
  readonly #logger: BusLogger;
  #start: number;
  #total = 0;
  #counts = new Map<string, number>();
  #storms = 0;

  /** Creates a monitor whose first window starts now. */
  constructor(options: StormMonitorOptions) {
    this.#clock = options.clock;
    this.#clientAttached = options.clientAttached;
    this.#threshold = positive("thresholdPerSecond", options.thresholdPerSecond ?? 100);
    this.#windowMs = positive("windowMs", options.windowMs ?? 5_000);
    this.#top = positive("topTopics", options.topTopics ?? 5);
    this.#maxTopics = positive("maxTrackedTopics", options.maxTrackedTopics ?? 1_024);
    this.#logger = options.logger ?? stderrLogger;
    this.#start = this.#clock.now();
  }

  /** Windows that crossed the threshold with no client attached, so far. */
  get storms(): number {
    return this.#storms;
  }

  /** Counts one publish on `topic`, closing the window first if it has elapsed. */
  record(topic: string): void {
    if (this.#clock.now() - this.#start >= this.#windowMs) this.check();
    this.#total++;
    const counts = this.#counts;
    const n = counts.get(topic);
    if (n !== undefined) counts.set(topic, n + 1);
    else if (counts.size < this.#maxTopics) counts.set(topic, 1);
    else counts.set(OTHER, (counts.get(OTHER) ?? 0) + 1);
  }

  /**
   * Closes the window if it has elapsed: warns and returns the report when its rate exceeded
   * the threshold with no client attached, and starts a new window. Call it from a timer too,
   * so a storm that stops publishing entirely still gets its window judged.
   */
  check(): StormReport | undefined {
    const now = this.#clock.now();
    const elapsed = now - this.#start;
    if (elapsed < this.#windowMs) return undefined;
    const total = this.#total;
    const counts = this.#counts;
    this.#start = now;
    this.#total = 0;
    this.#counts = new Map();
    const rate = total / (elapsed / 1000);
    if (rate <= this.#threshold || this.#clientAttached()) return undefined;
    const topics = [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, this.#top)
      .map(([topic, count]) => ({ topic, count }));
    this.#storms++;
    const report: StormReport = { rate, total, windowMs: elapsed, topics };
    this.#logger.warn(
      `Event storm: ${
        Math.round(rate)
      } messages/s over ${elapsed} ms with no client attached, the threshold is ${this.#threshold}; hottest topics: ${
        topics.map((t) => `${t.topic} (${t.count})`).join(", ")
      }`,
      { rate, total, window_ms: elapsed, threshold: this.#threshold, topics },
    );
    return report;
  }
}

function positive(field: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new BusError(
      BusCode.BUS_INVALID_OPTION,
      `Invalid storm monitor option ${field} "${value}": must be a positive number`,
      { data: { field, value } },
    );
  }
  return value;
}
