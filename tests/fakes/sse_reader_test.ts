import assert from "node:assert/strict";
import { readSse, type SseEvent, SseParser } from "./sse_reader.ts";

function parseAll(pieces: string[]): SseEvent[] {
  const p = new SseParser();
  return pieces.flatMap((piece) => p.feed(piece));
}

Deno.test("SseParser dispatches on a blank line and defaults the event to message", () => {
  assert.deepEqual(parseAll(["data: a\n\nevent: x\ndata: b\n\n"]), [
    { event: "message", data: "a" },
    { event: "x", data: "b" },
  ]);
});

Deno.test("SseParser accepts LF, CR and CRLF line ends, split across chunks", () => {
  assert.deepEqual(parseAll(["data: a\r", "\n\r", "\ndata: b\r\rdata: c\n", "\n"]), [
    { event: "message", data: "a" },
    { event: "message", data: "b" },
    { event: "message", data: "c" },
  ]);
});

Deno.test("SseParser joins data lines, drops one leading space and skips comments", () => {
  assert.deepEqual(parseAll([": keep-alive\ndata:  two spaces\ndata\ndata:x\n\n"]), [
    { event: "message", data: " two spaces\n\nx" },
  ]);
});

Deno.test("SseParser keeps id and retry and ignores unknown fields and empty events", () => {
  assert.deepEqual(
    parseAll(["id: 7\nretry: 100\nfoo: bar\ndata: a\n\nevent: lonely\n\ndata: b\n\n"]),
    [
      { event: "message", data: "a", id: "7", retry: 100 },
      { event: "message", data: "b", id: "7" },
    ],
  );
});

Deno.test("SseParser drops a leading byte order mark", () => {
  assert.deepEqual(parseAll(["\ufeffdata: a\n\n"]), [{ event: "message", data: "a" }]);
});

Deno.test("readSse() decodes UTF-8 split inside a character and discards an unfinished event", async () => {
  const bytes = new TextEncoder().encode("data: héllo ✓\n\ndata: cut");
  const chunks = [bytes.slice(0, 8), bytes.slice(8, 17), bytes.slice(17)];
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
  const events = [];
  for await (const ev of readSse(body)) events.push(ev);
  assert.deepEqual(events, [{ event: "message", data: "héllo ✓" }]);
});

Deno.test("readSse() rejects when the body breaks", async () => {
  let pulls = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulls++ === 0) c.enqueue(new TextEncoder().encode("data: a\n\n"));
      else c.error(new TypeError("connection reset"));
    },
  });
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const ev of readSse(body)) seen.push(ev.data);
  }, /connection reset/);
  assert.deepEqual(seen, ["a"]);
});
