/**
 * `LogRing`: the bounded output log of a background process. Bytes of stdout and stderr are
 * kept in arrival order up to a byte capacity; the oldest chunks go first. Every byte has an
 * absolute offset, so a reader asks for what came after the offset it last saw and learns
 * how many bytes it missed.
 *
 * @example
 * ```ts
 * import { LogRing } from "./log_ring.ts";
 *
 * const ring = new LogRing(8);
 * ring.push("stdout", new TextEncoder().encode("hello "));
 * ring.push("stderr", new TextEncoder().encode("world"));
 * const page = ring.read(0);
 * if (page.dropped !== 3 || page.next !== 11) throw new Error("unexpected");
 * ```
 *
 * @module
 */

/** Which stream a chunk came from. */
export type LogStream = "stdout" | "stderr";

/** A run of bytes from one stream. */
export interface LogChunk {
  /** The stream. */
  readonly stream: LogStream;
  /** Absolute offset of the first byte. */
  readonly offset: number;
  /** The bytes. */
  readonly data: Uint8Array;
}

/** What {@link LogRing.read} returns. */
export interface LogPage {
  /** Chunks from `since` (or the oldest kept byte) to the end, at most `maxBytes` in all. */
  readonly chunks: LogChunk[];
  /** The offset to pass next time. */
  readonly next: number;
  /** Bytes after `since` that the ring no longer holds. */
  readonly dropped: number;
}

/** A bounded, offset-addressed log of stdout and stderr chunks. */
export class LogRing {
  readonly #capacity: number;
  #chunks: LogChunk[] = [];
  #bytes = 0;
  #end = 0;

  /** Keeps at most `capacity` bytes (at least 1). */
  constructor(capacity: number) {
    this.#capacity = Math.max(1, Math.floor(capacity));
  }

  /** Offset one past the last byte ever pushed. */
  get end(): number {
    return this.#end;
  }

  /** Offset of the oldest byte still held. */
  get start(): number {
    return this.#end - this.#bytes;
  }

  /** Appends `data` from `stream`, dropping the oldest bytes past the capacity. */
  push(stream: LogStream, data: Uint8Array): void {
    if (data.length === 0) return;
    let bytes = data;
    if (bytes.length > this.#capacity) bytes = bytes.subarray(bytes.length - this.#capacity);
    const offset = this.#end + (data.length - bytes.length);
    this.#end += data.length;
    this.#chunks.push({ stream, offset, data: bytes.slice() });
    this.#bytes += bytes.length;
    while (this.#bytes > this.#capacity) {
      const first = this.#chunks[0];
      const over = this.#bytes - this.#capacity;
      if (first.data.length <= over) {
        this.#chunks.shift();
        this.#bytes -= first.data.length;
      } else {
        this.#chunks[0] = {
          stream: first.stream,
          offset: first.offset + over,
          data: first.data.subarray(over),
        };
        this.#bytes -= over;
      }
    }
  }

  /** The chunks after offset `since`, at most `maxBytes` (default: all held). */
  read(since = 0, maxBytes = Number.POSITIVE_INFINITY): LogPage {
    const from = Math.max(0, Math.min(Math.floor(since), this.#end));
    const dropped = Math.max(0, this.start - from);
    let at = Math.max(from, this.start);
    const chunks: LogChunk[] = [];
    let budget = Math.max(0, Math.floor(maxBytes));
    for (const chunk of this.#chunks) {
      const chunkEnd = chunk.offset + chunk.data.length;
      if (chunkEnd <= at || budget === 0) continue;
      const skip = at - chunk.offset;
      const take = Math.min(chunk.data.length - skip, budget);
      chunks.push({ stream: chunk.stream, offset: at, data: chunk.data.slice(skip, skip + take) });
      at += take;
      budget -= take;
    }
    return { chunks, next: at, dropped };
  }
}
