/**
 * The idle monitor: decides when a daemon with no clients should stop.
 *
 * - Persistent: after `idleTimeoutMs` with no authenticated connection (0: never), unless
 *   `keepAlive()` says a daemon or cron capsule runs (then it looks again a timeout later).
 * - Ephemeral: `graceMs` after the last client leaves, once at least one has connected; and if
 *   none ever connects, after `startGraceMs` (or the idle timeout, whichever comes first).
 *
 * Time comes from a {@link Timers} it is given, so tests drive it with `ManualTimers`.
 *
 * @module
 */
import type { Timers } from "../events/mod.ts";

/** Options of an {@link IdleMonitor}. */
export interface IdleMonitorOptions {
  /** Schedules the checks. */
  timers: Timers;
  /** Idle time before a persistent daemon stops, in ms; 0 never stops. */
  idleTimeoutMs: number;
  /** Whether the daemon starts ephemeral. */
  ephemeral: boolean;
  /** Ephemeral: how long after the last client leaves it stops; default 2,000 ms. */
  graceMs?: number;
  /** Ephemeral: how long it waits for a first client; default 30,000 ms. */
  startGraceMs?: number;
  /** True while something other than clients keeps the daemon up (daemon or cron capsules). */
  keepAlive?: () => boolean;
  /** Called once, with a reason, when the daemon should stop. */
  onIdle: (reason: string) => void;
}

/** Default {@link IdleMonitorOptions.graceMs}. */
export const DEFAULT_EPHEMERAL_GRACE_MS = 2_000;
/** Default {@link IdleMonitorOptions.startGraceMs}. */
export const DEFAULT_EPHEMERAL_START_GRACE_MS = 30_000;

/** Watches the connection count; see the module doc. */
export class IdleMonitor {
  readonly #timers: Timers;
  readonly #idleMs: number;
  readonly #graceMs: number;
  readonly #startGraceMs: number;
  readonly #keepAlive: () => boolean;
  readonly #onIdle: (reason: string) => void;
  #ephemeral: boolean;
  #total = 0;
  #everConnected = false;
  #timer: unknown = undefined;
  #running = false;
  #fired = false;

  /** Creates a stopped monitor; call {@link start}. */
  constructor(options: IdleMonitorOptions) {
    this.#timers = options.timers;
    this.#idleMs = Math.max(0, options.idleTimeoutMs);
    this.#ephemeral = options.ephemeral;
    this.#graceMs = options.graceMs ?? DEFAULT_EPHEMERAL_GRACE_MS;
    this.#startGraceMs = options.startGraceMs ?? DEFAULT_EPHEMERAL_START_GRACE_MS;
    this.#keepAlive = options.keepAlive ?? (() => false);
    this.#onIdle = options.onIdle;
  }

  /** True when it exits after the last client. */
  get ephemeral(): boolean {
    return this.#ephemeral;
  }

  /** Starts watching with no connection open. */
  start(): void {
    this.#running = true;
    this.#schedule();
  }

  /** Stops watching; no callback fires afterwards. */
  stop(): void {
    this.#running = false;
    this.#clear();
  }

  /** Makes the daemon ephemeral or persistent from now on. */
  setEphemeral(ephemeral: boolean): void {
    this.#ephemeral = ephemeral;
    this.#schedule();
  }

  /** Tells the monitor how many authenticated connections are open. */
  connections(total: number): void {
    const before = this.#total;
    this.#total = total;
    if (total > 0) {
      this.#everConnected = true;
      this.#clear();
    } else if (before > 0 || this.#timer === undefined) {
      this.#schedule();
    }
  }

  #schedule(): void {
    this.#clear();
    if (!this.#running || this.#fired || this.#total > 0) return;
    let delay: number;
    let reason: string;
    if (this.#ephemeral && this.#everConnected) {
      delay = this.#graceMs;
      reason = "ephemeral: the last client left";
    } else if (this.#ephemeral) {
      delay = this.#idleMs > 0 ? Math.min(this.#idleMs, this.#startGraceMs) : this.#startGraceMs;
      reason = `ephemeral: no client connected within ${delay} ms`;
    } else if (this.#idleMs > 0) {
      delay = this.#idleMs;
      reason = `idle: no client for ${delay / 1000} s`;
    } else {
      return;
    }
    this.#timer = this.#timers.setTimeout(() => this.#due(reason), delay);
  }

  #due(reason: string): void {
    this.#timer = undefined;
    if (!this.#running || this.#fired || this.#total > 0) return;
    if (this.#keepAlive()) {
      // A daemon or cron capsule runs: look again one period later.
      this.#schedule();
      return;
    }
    this.#fired = true;
    this.#onIdle(reason);
  }

  #clear(): void {
    if (this.#timer !== undefined) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
