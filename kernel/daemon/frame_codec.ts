/**
 * The one encoder and the one decoder of the socket: a frame is a `u32` big-endian byte length
 * followed by that many bytes of UTF-8 JSON text of an object.
 *
 * ```
 * frame = length u32be (1 .. limit) || UTF-8 JSON object text
 * ```
 *
 * The decoder checks the declared length against its limit as soon as the 4 length bytes are
 * in, before buffering the body, so a hostile length costs nothing. Both sides share this file.
 *
 * @module
 */
import { DaemonCode, DaemonError } from "./errors.ts";
import { WireCode } from "./protocol.ts";

/** The largest frame body after the welcome: 16 MiB. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** The largest frame body before the welcome (the hello): 64 KiB. */
export const HELLO_MAX_FRAME_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes `frame` as one length-prefixed frame; throws `DAEMON_PROTOCOL` (`FRAME_TOO_LARGE`)
 * when its JSON text is over `maxBytes`, and (`MALFORMED_FRAME`) when it is not serialisable.
 */
export function encodeFrame(frame: object, maxBytes: number = MAX_FRAME_BYTES): Uint8Array {
  let text: string;
  try {
    text = JSON.stringify(frame);
  } catch (cause) {
    throw new DaemonError(
      DaemonCode.DAEMON_PROTOCOL,
      `Cannot encode frame: ${(cause as Error).message}`,
      { data: { code: WireCode.MALFORMED_FRAME }, cause },
    );
  }
  if (text.length > maxBytes) throw tooLarge(text.length, maxBytes, "Frame");
  const body = encoder.encode(text);
  if (body.length > maxBytes) throw tooLarge(body.length, maxBytes, "Frame");
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/**
 * Splits a byte stream into frames. Feed it what the socket reads with {@link push}; it returns
 * the frames completed so far, parsed. Throws `DAEMON_PROTOCOL` with `data.code`
 * `FRAME_TOO_LARGE` or `MALFORMED_FRAME`; after a throw the stream is unusable.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./frame_codec.ts";
 * const bytes = encodeFrame({ type: "hello", protocol: 1 });
 * const dec = new FrameDecoder();
 * const first = dec.push(bytes.subarray(0, 3)); // not complete yet
 * const rest = dec.push(bytes.subarray(3));
 * if (first.length !== 0 || rest.length !== 1) throw new Error("unexpected");
 * ```
 */
export class FrameDecoder {
  /** The largest body accepted; may be raised after the handshake. */
  maxFrameBytes: number;
  #chunks: Uint8Array[] = [];
  #offset = 0; // consumed bytes of #chunks[0]
  #buffered = 0;
  #need = -1; // body length of the frame being read, or -1 while reading its length

  /** Creates a decoder accepting bodies of up to `maxFrameBytes`. */
  constructor(maxFrameBytes: number = MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds `chunk` (copied) and returns every frame it completes, in order. */
  push(chunk: Uint8Array): Record<string, unknown>[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk.slice());
      this.#buffered += chunk.length;
    }
    const frames: Record<string, unknown>[] = [];
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 4) break;
        const head = this.#take(4);
        const length = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
        if (length === 0) throw malformed("Frame length is zero");
        if (length > this.maxFrameBytes) throw tooLarge(length, this.maxFrameBytes, "Frame");
        this.#need = length;
      }
      if (this.#buffered < this.#need) break;
      const body = this.#take(this.#need);
      this.#need = -1;
      frames.push(parseBody(body));
    }
    return frames;
  }

  #take(n: number): Uint8Array {
    const first = this.#chunks[0];
    this.#buffered -= n;
    if (first.length - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      if (this.#offset === first.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0];
      const take = Math.min(c.length - this.#offset, n - filled);
      out.set(c.subarray(this.#offset, this.#offset + take), filled);
      filled += take;
      this.#offset += take;
      if (this.#offset === c.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return out;
  }
}

function parseBody(body: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    throw malformed("Frame is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw malformed(`Frame is not JSON: ${(cause as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed("Frame is not a JSON object");
  }
  return value as Record<string, unknown>;
}

function malformed(message: string): DaemonError {
  return new DaemonError(DaemonCode.DAEMON_PROTOCOL, message, {
    data: { code: WireCode.MALFORMED_FRAME },
  });
}

function tooLarge(bytes: number, limit: number, what: string): DaemonError {
  return new DaemonError(
    DaemonCode.DAEMON_PROTOCOL,
    `${what} of ${bytes} bytes is over the limit of ${limit} bytes`,
    { data: { code: WireCode.FRAME_TOO_LARGE, bytes, limit } },
  );
}
