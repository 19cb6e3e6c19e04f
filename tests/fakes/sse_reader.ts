/**
 * A Server-Sent Events parser written to the WHATWG rules, for tests and benches that read the
 * fakes' streams the way a real client does: lines end in LF, CR or CRLF (split anywhere across
 * chunks), a blank line dispatches, `data` lines join with LF, `:` starts a comment, one space
 * after the colon is dropped, and an unfinished event at the end of the stream is discarded.
 * It shares no code with the fakes, so a framing bug on either side shows.
 *
 * @module
 */

/** One dispatched event. */
export interface SseEvent {
  /** The `event` field, `message` when absent. */
  readonly event: string;
  /** The `data` lines joined by LF. */
  readonly data: string;
  /** The last `id` seen, if any. */
  readonly id?: string;
  /** The `retry` field, if one came with this event. */
  readonly retry?: number;
}

/** An incremental parser: feed text, get the events completed by it. */
export class SseParser {
  #buffer = "";
  #event = "";
  #data: string[] = [];
  #id: string | undefined;
  #retry: number | undefined;
  #started = false;

  /** Adds text and returns the events it completes. */
  feed(text: string): SseEvent[] {
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.#buffer += text;
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.#buffer.length; i++) {
      const c = this.#buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      if (c === "\r" && i === this.#buffer.length - 1) break; // wait: an LF may follow
      const line = this.#buffer.slice(start, i);
      if (c === "\r" && this.#buffer[i + 1] === "\n") i++;
      start = i + 1;
      const ev = this.#line(line);
      if (ev) out.push(ev);
    }
    this.#buffer = this.#buffer.slice(start);
    return out;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") {
      const ev = this.#data.length === 0 ? undefined : {
        event: this.#event === "" ? "message" : this.#event,
        data: this.#data.join("\n"),
        ...(this.#id !== undefined ? { id: this.#id } : {}),
        ...(this.#retry !== undefined ? { retry: this.#retry } : {}),
      };
      this.#event = "";
      this.#data = [];
      this.#retry = undefined;
      return ev;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
    else if (field === "id" && !value.includes("\0")) this.#id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.#retry = Number(value);
    return undefined;
  }
}

/** Reads an SSE body to the end, yielding each event; a broken connection rejects. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.feed(decoder.decode(value, { stream: true }));
    }
    yield* parser.feed(decoder.decode());
  } finally {
    reader.releaseLock();
  }
}
