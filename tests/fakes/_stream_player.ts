/**
 * Plays a rendered reply onto a response body: waits the scripted delays, inserts the malformed
 * line or the in-stream error at its chunk position, drops the connection for a disconnect, and
 * stops cleanly when the client goes away or the server closes.
 *
 * @module
 */
import type { ReplySpec } from "./fake_script.ts";
import type { FakeDialect, Frame } from "./fake_server.ts";

/** Yielded instead of text to make the body fail, which drops the connection. */
export const DISCONNECT: unique symbol = Symbol("disconnect");

/** A source of body text, or {@link DISCONNECT}. */
export type BodySource = AsyncGenerator<string | typeof DISCONNECT>;

/** Yields the first half of a body, then drops the connection. */
export async function* halfThenDrop(half: string): BodySource {
  yield half;
  yield DISCONNECT;
}

/** Yields the frames of a streamed reply with the script's delays and faults applied. */
export async function* play(
  frames: Frame[],
  reply: ReplySpec,
  dialect: FakeDialect,
  sleep: (ms: number) => Promise<void>,
): BodySource {
  const contentAt = frames.flatMap((f, i) => f.content ? [i] : []);
  const position = (k: number) =>
    k < contentAt.length
      ? contentAt[k]
      : contentAt.length > 0
      ? contentAt[contentAt.length - 1] + 1
      : Math.min(1, frames.length);
  const malformedAt = reply.malformed ? position(reply.malformed.afterChunks) : -1;
  const errorAt = reply.streamError ? position(reply.streamError.afterChunks) : -1;
  const dropAt = reply.disconnectAfter !== undefined ? position(reply.disconnectAfter) : -1;
  for (let i = 0; i <= frames.length; i++) {
    if (i === malformedAt) yield `${reply.malformed!.line}\n\n`;
    if (i === errorAt) {
      yield dialect.streamError(reply.streamError!);
      return;
    }
    if (i === dropAt) {
      yield DISCONNECT;
      return;
    }
    if (i === frames.length) return;
    const frame = frames[i];
    if (frame.content && frame.delayMs) await sleep(frame.delayMs);
    yield frame.data;
  }
}

/** A response body fed from `source`; registered in `open` so a shutdown can drop it. */
export function toStream(
  source: BodySource,
  open: Set<ReadableStreamDefaultController<Uint8Array>>,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let controller: ReadableStreamDefaultController<Uint8Array>;
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      open.add(c);
    },
    async pull(c) {
      let step: IteratorResult<string | typeof DISCONNECT>;
      try {
        step = await source.next();
      } catch {
        step = { done: false, value: DISCONNECT };
      }
      if (!open.has(c)) return;
      if (step.done) {
        open.delete(c);
        c.close();
      } else if (step.value === DISCONNECT) {
        open.delete(c);
        c.error(undefined);
        await source.return(undefined);
      } else {
        c.enqueue(encoder.encode(step.value));
      }
    },
    async cancel() {
      open.delete(controller);
      await source.return(undefined);
    },
  });
}

/** Waits `ms` milliseconds with a real timer, ending early (and clearing it) on abort. */
export function realSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
