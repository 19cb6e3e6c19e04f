import assert from "node:assert/strict";
import { REDACTED, RequestLog } from "./request_log.ts";

Deno.test("RequestLog.record() redacts secret headers and keeps the rest", () => {
  const log = new RequestLog();
  const entry = log.record({
    method: "POST",
    url: new URL("http://127.0.0.1:1/v1/messages?beta=true"),
    headers: new Headers({
      authorization: "Bearer sk-1",
      "x-api-key": "sk-2",
      "api-key": "sk-3",
      cookie: "s=1",
      "anthropic-version": "2023-06-01",
    }),
    body: { a: 1 },
  });
  assert.deepEqual(entry, {
    seq: 0,
    method: "POST",
    path: "/v1/messages",
    query: "?beta=true",
    headers: {
      "anthropic-version": "2023-06-01",
      "api-key": REDACTED,
      authorization: REDACTED,
      cookie: REDACTED,
      "x-api-key": REDACTED,
    },
    body: { a: 1 },
  });
  assert.ok(!JSON.stringify(log.entries).includes("sk-"));
});

Deno.test("RequestLog counts per path and clear() starts over", () => {
  const log = new RequestLog();
  const rec = (path: string) =>
    log.record({
      method: "GET",
      url: new URL(`http://h${path}`),
      headers: new Headers(),
      body: null,
    });
  rec("/a");
  rec("/a");
  rec("/b");
  assert.deepEqual(log.counts(), { "/a": 2, "/b": 1 });
  assert.equal(log.count("/a"), 2);
  assert.equal(log.count("/c"), 0);
  assert.deepEqual(log.entries.map((e) => e.seq), [0, 1, 2]);
  log.clear();
  assert.deepEqual(log.counts(), {});
  assert.equal(rec("/a").seq, 0);
});
