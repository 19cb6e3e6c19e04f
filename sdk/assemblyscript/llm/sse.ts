/**
 * An incremental server-sent-events parser: bytes go in as they arrive (a chunk may end
 * anywhere, inside a line or inside a multi-byte character), complete events come out. Lines are
 * split on LF at the byte level (CR before it dropped), so UTF-8 is only decoded whole.
 */

/** One dispatched event: its `event:` name ("" when none) and its `data:` lines joined by LF. */
export class SseEvent {
  name: string = "";
  data: string = "";
}

/** Feeds bytes, yields events. */
export class SseParser {
  private buf: Uint8Array = new Uint8Array(0);
  private name: string = "";
  private data: string = "";
  private hasData: bool = false;
  /** Bytes received in total. */
  received: i64 = 0;

  /** Adds `chunk` and returns the events it completed. */
  push(chunk: ArrayBuffer): SseEvent[] {
    const incoming = Uint8Array.wrap(chunk);
    this.received += incoming.length;
    const joined = new Uint8Array(this.buf.length + incoming.length);
    joined.set(this.buf, 0);
    joined.set(incoming, this.buf.length);
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < joined.length; i++) {
      if (joined[i] != 10) continue;
      let end = i;
      if (end > start && joined[end - 1] == 13) end--;
      const line = String.UTF8.decodeUnsafe(
        joined.dataStart + <usize> start,
        <usize> (end - start),
      );
      this.line(line, out);
      start = i + 1;
    }
    this.buf = joined.slice(start);
    return out;
  }

  /** Whether bytes of an unfinished line or event are pending. */
  get pending(): bool {
    return this.buf.length > 0 || this.hasData;
  }

  /** Ends the input: an event without its blank line is dispatched (servers that close early). */
  finish(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.buf.length > 0) {
      const line = String.UTF8.decodeUnsafe(this.buf.dataStart, <usize> this.buf.length);
      this.buf = new Uint8Array(0);
      this.line(line, out);
    }
    this.dispatch(out);
    return out;
  }

  private dispatch(out: SseEvent[]): void {
    if (this.hasData) {
      const e = new SseEvent();
      e.name = this.name;
      e.data = this.data;
      out.push(e);
    }
    this.name = "";
    this.data = "";
    this.hasData = false;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line.length == 0) {
      this.dispatch(out);
      return;
    }
    if (line.charCodeAt(0) == 58) return; // a comment
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.substring(0, colon);
      value = line.substring(colon + 1);
      if (value.length > 0 && value.charCodeAt(0) == 32) value = value.substring(1);
    }
    if (field == "data") {
      this.data = this.hasData ? this.data + "\n" + value : value;
      this.hasData = true;
    } else if (field == "event") {
      this.name = value;
    }
  }
}
