/**
 * The SharedArrayBuffer channel that carries a host call from a capsule worker to the kernel
 * and its reply back (`docs/host_abi.md` § Channel protocol).
 *
 * One channel per instance; one call in flight at a time (the guest is blocked in it). The
 * buffer is a header of {@link HEADER_WORDS} 32-bit words then a data area. A message larger
 * than the data area crosses in chunks, each acknowledged. The worker side is synchronous
 * (`Atomics.wait` after a short bounded spin); the kernel side is asynchronous
 * (`Atomics.waitAsync`), so the kernel's thread never blocks.
 *
 * This file is imported by the worker script: it imports nothing.
 *
 * @module
 */

/** Header word: the channel state, one of the `STATE_*` values. */
export const W_STATE = 0;
/** Header word: the index of the host function called (in the engine's function list). */
export const W_FN = 1;
/** Header word: the total length of the message being transferred. */
export const W_TOTAL = 2;
/** Header word: the length of the chunk now in the data area. */
export const W_CHUNK = 3;
/** Header word: a call counter the worker bumps per call (diagnostics). */
export const W_SEQ = 4;
/**
 * Header word: microseconds the guest ran between the previous reply and this request
 * (capped; -1 for a first call). The kernel polls for the next call only after a guest that
 * came back quickly last time.
 */
export const W_GUEST_US = 5;
/** Words in the header; the data area starts at `HEADER_WORDS * 4`. */
export const HEADER_WORDS = 8;

/** The worker may start a call (initial state; the worker returns to it after a reply). */
export const STATE_IDLE = 0;
/** Worker → kernel: a request chunk is in the data area and more follow. */
export const STATE_REQ_PART = 1;
/** Worker → kernel: the last (or only) request chunk is in the data area. */
export const STATE_REQ_LAST = 2;
/** Kernel → worker: the request chunk was consumed; write the next. */
export const STATE_REQ_ACK = 3;
/** Kernel → worker: a reply chunk is in the data area and more follow. */
export const STATE_REP_PART = 4;
/** Kernel → worker: the last (or only) reply chunk is in the data area. */
export const STATE_REP_LAST = 5;
/** Worker → kernel: the reply chunk was consumed; write the next. */
export const STATE_REP_ACK = 6;
/** The kernel closed the channel (the instance is being terminated). */
export const STATE_CLOSED = 7;

/** The default channel size: 256 KiB (a larger message is chunked). */
export const DEFAULT_CHANNEL_BYTES = 256 * 1024;

/** The smallest channel allowed: the header plus 4 KiB of data. */
export const MIN_CHANNEL_BYTES = HEADER_WORDS * 4 + 4096;

/** Creates a channel buffer of `bytes` (rounded up to a multiple of 4). */
export function createChannelBuffer(bytes = DEFAULT_CHANNEL_BYTES): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(MIN_CHANNEL_BYTES, Math.ceil(bytes / 4) * 4));
}

/** Raised in the worker when the kernel closed the channel mid-call. */
export class ChannelClosedError extends Error {
  /** Creates the error. */
  constructor() {
    super("The host channel was closed by the kernel");
  }
}

/** The worker's end: a synchronous `call()` that blocks until the kernel replies. */
export class HostChannelClient {
  readonly #i32: Int32Array;
  readonly #data: Uint8Array;
  readonly #spinMs: number;
  #repliedAt = -1;

  /** Wraps `buffer`; spins up to `spinMicros` before each `Atomics.wait`. */
  constructor(buffer: SharedArrayBuffer, spinMicros: number) {
    this.#i32 = new Int32Array(buffer, 0, HEADER_WORDS);
    this.#data = new Uint8Array(buffer, HEADER_WORDS * 4);
    this.#spinMs = spinMicros / 1000;
  }

  /** Sends `request` to host function number `fn` and returns the kernel's reply bytes. */
  call(fn: number, request: Uint8Array): Uint8Array {
    const i32 = this.#i32;
    const cap = this.#data.length;
    i32[W_FN] = fn;
    i32[W_TOTAL] = request.length;
    i32[W_SEQ] = (i32[W_SEQ] + 1) | 0;
    i32[W_GUEST_US] = this.#repliedAt < 0
      ? -1
      : Math.min(1_000_000, Math.round((performance.now() - this.#repliedAt) * 1000));
    let off = 0;
    for (;;) {
      const n = Math.min(cap, request.length - off);
      this.#data.set(request.subarray(off, off + n));
      i32[W_CHUNK] = n;
      off += n;
      const last = off >= request.length;
      Atomics.store(i32, W_STATE, last ? STATE_REQ_LAST : STATE_REQ_PART);
      Atomics.notify(i32, W_STATE);
      if (last) break;
      this.#waitWhile(STATE_REQ_PART);
    }
    this.#waitWhile(STATE_REQ_LAST);
    let reply: Uint8Array | undefined;
    off = 0;
    for (;;) {
      const state = Atomics.load(i32, W_STATE);
      if (state === STATE_CLOSED) throw new ChannelClosedError();
      if (reply === undefined) reply = new Uint8Array(i32[W_TOTAL]);
      const n = i32[W_CHUNK];
      reply.set(this.#data.subarray(0, n), off);
      off += n;
      if (state === STATE_REP_LAST) {
        Atomics.store(i32, W_STATE, STATE_IDLE);
        this.#repliedAt = performance.now();
        return reply;
      }
      Atomics.store(i32, W_STATE, STATE_REP_ACK);
      Atomics.notify(i32, W_STATE);
      this.#waitWhile(STATE_REP_ACK);
    }
  }

  #waitWhile(state: number): void {
    const i32 = this.#i32;
    if (Atomics.load(i32, W_STATE) !== state) return;
    if (this.#spinMs > 0) {
      const until = performance.now() + this.#spinMs;
      do {
        for (let i = 0; i < 64; i++) if (Atomics.load(i32, W_STATE) !== state) return;
      } while (performance.now() < until);
    }
    while (Atomics.load(i32, W_STATE) === state) Atomics.wait(i32, W_STATE, state);
    if (Atomics.load(i32, W_STATE) === STATE_CLOSED) throw new ChannelClosedError();
  }
}

/** Answers one host call: the function's name and request bytes in, reply bytes out. */
export type ChannelServe = (fn: number, request: Uint8Array) => Promise<Uint8Array>;

/** How long the kernel side may keep serving without yielding to its event loop, ms. */
const MAX_BUSY_MS = 1;

/**
 * The kernel's end: waits with `Atomics.waitAsync`, serves each call, writes the reply. After
 * a reply to a guest that came back within `kernelSpinMicros` last time, it polls for the next
 * call that long before sleeping (a sleeping thread wakes in ~50 µs here, a polling one at
 * once), but never keeps the kernel's thread more than {@link MAX_BUSY_MS} without yielding.
 */
export class HostChannelServer {
  readonly #i32: Int32Array;
  readonly #data: Uint8Array;
  readonly #serve: ChannelServe;
  readonly #spinMs: number;
  #closed = false;
  #running: Promise<void> | undefined;

  /** Serves calls arriving on `buffer` with `serve` once {@link start} is called. */
  constructor(
    buffer: SharedArrayBuffer,
    serve: ChannelServe,
    options: { kernelSpinMicros?: number } = {},
  ) {
    this.#i32 = new Int32Array(buffer, 0, HEADER_WORDS);
    this.#data = new Uint8Array(buffer, HEADER_WORDS * 4);
    this.#serve = serve;
    this.#spinMs = (options.kernelSpinMicros ?? 0) / 1000;
  }

  /** Starts the serving loop (idempotent); the promise settles when the channel closes. */
  start(): Promise<void> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  /** Closes the channel: wakes and ends the serving loop; a reply in progress is dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#i32, W_STATE, STATE_CLOSED);
    Atomics.notify(this.#i32, W_STATE);
  }

  async #loop(): Promise<void> {
    const i32 = this.#i32;
    let since = performance.now();
    while (!this.#closed) {
      const state = Atomics.load(i32, W_STATE);
      if (state === STATE_REQ_PART || state === STATE_REQ_LAST) {
        if (performance.now() - since > MAX_BUSY_MS) {
          // setImmediate, not setTimeout(0): Deno's timers stall ~2 ms, an immediate ~8 µs.
          await new Promise<void>((resolve) => setImmediate(resolve));
          since = performance.now();
          continue;
        }
        // Poll for the next call only after a guest that came back within the window last time.
        const guestUs = i32[W_GUEST_US];
        await this.#serveOne();
        if (this.#spinMs > 0 && guestUs >= 0 && guestUs < this.#spinMs * 1000) {
          this.#spinForNext(since);
        }
        continue;
      }
      await this.#waitWhile(state);
      since = performance.now();
    }
  }

  /** Polls briefly for the guest's next call (within the busy budget). */
  #spinForNext(since: number): void {
    const i32 = this.#i32;
    const until = Math.min(performance.now() + this.#spinMs, since + MAX_BUSY_MS);
    do {
      for (let i = 0; i < 64; i++) {
        const s = Atomics.load(i32, W_STATE);
        if (s === STATE_REQ_PART || s === STATE_REQ_LAST || s === STATE_CLOSED) return;
      }
    } while (performance.now() < until);
  }

  async #waitWhile(state: number): Promise<void> {
    while (!this.#closed && Atomics.load(this.#i32, W_STATE) === state) {
      const w = Atomics.waitAsync(this.#i32, W_STATE, state);
      if (w.async) await w.value;
    }
  }

  async #serveOne(): Promise<void> {
    const i32 = this.#i32;
    const fn = i32[W_FN];
    const request = new Uint8Array(i32[W_TOTAL]);
    let off = 0;
    for (;;) {
      const state = Atomics.load(i32, W_STATE);
      const n = i32[W_CHUNK];
      request.set(this.#data.subarray(0, n), off);
      off += n;
      if (state === STATE_REQ_LAST) break;
      Atomics.store(i32, W_STATE, STATE_REQ_ACK);
      Atomics.notify(i32, W_STATE);
      await this.#waitWhile(STATE_REQ_ACK);
      if (this.#closed) return;
    }
    const reply = await this.#serve(fn, request);
    if (this.#closed) return;
    i32[W_TOTAL] = reply.length;
    const cap = this.#data.length;
    off = 0;
    for (;;) {
      const n = Math.min(cap, reply.length - off);
      this.#data.set(reply.subarray(off, off + n));
      i32[W_CHUNK] = n;
      off += n;
      const last = off >= reply.length;
      Atomics.store(i32, W_STATE, last ? STATE_REP_LAST : STATE_REP_PART);
      Atomics.notify(i32, W_STATE);
      if (last) return;
      await this.#waitWhile(STATE_REP_PART);
      if (this.#closed) return;
    }
  }
}
