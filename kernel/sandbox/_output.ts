/**
 * Collecting a stream with a byte cap: the first `cap` bytes are kept, the rest is read and
 * counted (so the process never blocks on a full pipe) but dropped.
 *
 * @module
 */

/** What {@link collectCapped} gathered. */
export interface Collected {
  /** The first `cap` bytes. */
  bytes: Uint8Array;
  /** Every byte the stream carried. */
  total: number;
  /** True when `total` exceeded the cap. */
  truncated: boolean;
}

/** Reads `stream` to its end, keeping at most `cap` bytes. */
export async function collectCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
): Promise<Collected> {
  const parts: Uint8Array[] = [];
  let kept = 0;
  let total = 0;
  try {
    for await (const chunk of stream) {
      total += chunk.length;
      if (kept < cap) {
        const take = chunk.subarray(0, Math.min(chunk.length, cap - kept));
        parts.push(take.slice());
        kept += take.length;
      }
    }
  } catch {
    // The pipe broke: what arrived is what there is.
  }
  const bytes = new Uint8Array(kept);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return { bytes, total, truncated: total > cap };
}

/** Writes `input` to `stdin` and closes it; a command that stops reading is not an error. */
export async function feedStdin(
  stdin: WritableStream<Uint8Array>,
  input: Uint8Array | string | ReadableStream<Uint8Array> | undefined,
): Promise<void> {
  try {
    if (input instanceof ReadableStream) {
      await input.pipeTo(stdin);
      return;
    }
    const writer = stdin.getWriter();
    if (input !== undefined) {
      await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
    }
    await writer.close();
  } catch {
    // EPIPE: the command exited or closed its stdin.
  }
}
