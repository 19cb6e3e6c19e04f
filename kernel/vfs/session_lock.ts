/**
 * `SessionLock`: the per-session exclusive lock. Overlay writes, commit, discard and fold run
 * under it, and a native subprocess of the session holds it while it runs (DESIGN §6a), so
 * nothing writes the session's upper dir while a command's overlay mount uses it as a layer.
 *
 * Re-entrant within one async call chain: code running inside {@link SessionLock.run} (for
 * example a fold after the command exits) may call locked operations without deadlocking.
 * Waiters are served first come, first served. Reads do not take the lock.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";

interface Hold {
  lock: SessionLock;
  active: boolean;
}

const holds = new AsyncLocalStorage<readonly Hold[]>();

/** An async, FIFO, re-entrant exclusive lock. */
export class SessionLock {
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  #held = false;

  /** True while some call holds the lock. */
  get locked(): boolean {
    return this.#held;
  }

  /** How many calls wait for the lock. */
  get waiting(): number {
    return this.#waiting;
  }

  /** True when the current async call chain holds this lock. */
  heldHere(): boolean {
    return holds.getStore()?.some((h) => h.lock === this && h.active) ?? false;
  }

  /** Runs `fn` holding the lock; waits for earlier holders first. */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.heldHere()) return await fn();
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    this.#waiting++;
    await previous;
    this.#waiting--;
    this.#held = true;
    const hold: Hold = { lock: this, active: true };
    try {
      return await holds.run([...(holds.getStore() ?? []), hold], fn);
    } finally {
      hold.active = false;
      this.#held = false;
      release();
    }
  }
}
