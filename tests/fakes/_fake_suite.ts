/**
 * The suite both fakes run (`openai_fake_test.ts`, `anthropic_fake_test.ts`): every reply kind,
 * auth, recording, counters, concurrency and shutdown, through plain `fetch` and the reference
 * stream clients. Provider-specific wire details are checked in each provider's own test.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../kernel/mod.ts";
import type { FakeServer, FakeServerOptions } from "./fake_server.ts";
import type { CollectedReply } from "./stream_client.ts";

/** A conversation message as the suite writes it, rendered per provider by the adapter. */
export type SuiteMessage =
  | { role: "user"; text: string }
  | {
    role: "assistant";
    text?: string;
    toolCalls?: { id: string; name: string; arguments: string }[];
  }
  | { role: "tool"; results: { id: string; text: string }[] };

/** What the suite needs to know about one provider. */
export interface ProviderAdapter {
  /** Starts the fake. */
  start(options: FakeServerOptions): Promise<FakeServer>;
  /** The chat path. */
  chatPath: string;
  /** Request headers, with the key when given. */
  headers(key?: string): Record<string, string>;
  /** A chat request body. */
  body(
    messages: SuiteMessage[],
    options?: { stream?: boolean; model?: string; system?: string },
  ): unknown;
  /** Accumulates a streamed reply. */
  collect(res: Response): Promise<CollectedReply>;
  /** Reads a non-streaming reply body. */
  parse(
    json: unknown,
  ): {
    text: string;
    toolCalls: { id: string; name: string; arguments: string }[];
    finish: string;
    inputTokens: number;
    outputTokens: number;
  };
  /** The error type and message of an HTTP error body. */
  errorOf(json: unknown): { type: string; message: string };
  /** Finish reasons: plain stop, tool calls, token limit. */
  finish: { stop: string; tools: string; length: string };
}

const user = (text: string): SuiteMessage => ({ role: "user", text });

/** A script exercising every reply kind, keyed by markers in the last message. */
export const SUITE_SCRIPT = {
  name: "suite",
  models: ["m-small", "m-large"],
  turns: [
    { match: { lastMessage: "[text]" }, reply: { text: ["Hel", "lo ", "world"] } },
    {
      match: { lastMessage: "[tools]" },
      reply: {
        text: "Calling.",
        argumentChunkSize: 5,
        toolCalls: [
          { name: "read_file", arguments: { path: "a.txt" } },
          { name: "run_shell", arguments: { command: 'echo "hi" && ls' }, id: "fixed_id" },
        ],
      },
    },
    {
      match: { lastMessage: "[only-tool]" },
      reply: { toolCalls: [{ name: "list", arguments: {} }] },
    },
    {
      match: { lastMessage: "[usage]" },
      reply: { text: "Counted.", usage: { inputTokens: 123, outputTokens: 45 } },
    },
    { match: { lastMessage: "[length]" }, reply: { text: "Cut", finish: "length" } },
    {
      match: { lastMessage: "[429]" },
      reply: { error: { status: 429, retryAfter: 7, message: "Slow down" } },
    },
    { match: { lastMessage: "[500]" }, reply: { error: { status: 500 } } },
    { match: { lastMessage: "[401]" }, reply: { error: { status: 401 } } },
    { match: { lastMessage: "[drop]" }, reply: { text: ["a", "b", "c", "d"], disconnectAfter: 2 } },
    { match: { lastMessage: "[drop0]" }, reply: { text: ["a", "b"], disconnectAfter: 0 } },
    {
      match: { lastMessage: "[drop-tool]" },
      reply: {
        toolCalls: [{ name: "t", arguments: { long: "xxxxxxxxxxxxxxxxxxxxxxxx" } }],
        argumentChunkSize: 4,
        disconnectAfter: 3,
      },
    },
    {
      match: { lastMessage: "[bad]" },
      reply: { text: ["one ", "two"], malformed: { afterChunks: 1, line: "data: {oops" } },
    },
    {
      match: { lastMessage: "[stream-error]" },
      reply: {
        text: ["one ", "two"],
        streamError: { afterChunks: 1, type: "overloaded_error", message: "Overloaded" },
      },
    },
    {
      match: { lastMessage: "[slow]" },
      reply: { text: ["a", { text: "b", delayMs: 40 }], delayMs: 10 },
    },
    {
      match: { lastMessage: { regex: "^ping (\\d+)$" } },
      reply: {
        text: ["pong ", "{{match.1}}"],
        toolCalls: [{ name: "echo", arguments: { n: "{{match.1}}" } }],
      },
    },
    { match: { turn: 1, toolResults: true }, reply: { text: "Results: {{lastMessage}}" } },
    {
      match: { lastMessage: "[model]" },
      reply: { text: "model={{model}} request={{request}} turn={{turn}}" },
    },
  ],
  fallback: { text: "fallback" },
};

/** Runs the shared suite against one provider. */
export async function runFakeSuite(t: Deno.TestContext, a: ProviderAdapter): Promise<void> {
  const sleeps: number[] = [];
  const fake = await a.start({
    script: SUITE_SCRIPT,
    apiKey: "sk-test-key",
    clock: new ManualClock(1_700_000_000_000),
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  });
  const post = (
    messages: SuiteMessage[],
    options: { stream?: boolean; model?: string; key?: string; system?: string } = {},
  ) =>
    fetch(fake.url + a.chatPath, {
      method: "POST",
      headers: a.headers(options.key ?? "sk-test-key"),
      body: JSON.stringify(
        a.body(messages, {
          stream: options.stream ?? true,
          model: options.model,
          system: options.system,
        }),
      ),
    });

  try {
    await t.step("listens on loopback and exposes url, port and baseUrl", () => {
      assert.match(fake.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(fake.url, `http://127.0.0.1:${fake.port}`);
      assert.ok(fake.baseUrl.startsWith(fake.url));
    });

    await t.step("streams text deltas in order and ends the stream", async () => {
      const r = await a.collect(await post([user("[text]")]));
      assert.equal(r.text, "Hello world");
      assert.equal(r.finish, a.finish.stop);
      assert.equal(r.done, true);
      assert.equal(r.disconnected, false);
      assert.deepEqual(r.malformed, []);
      assert.deepEqual(r.toolCalls, []);
    });

    await t.step("streams parallel tool calls with arguments in fragments", async () => {
      const r = await a.collect(await post([user("[tools]")]));
      assert.equal(r.text, "Calling.");
      assert.equal(r.finish, a.finish.tools);
      assert.equal(r.toolCalls.length, 2);
      assert.equal(r.toolCalls[0].name, "read_file");
      assert.deepEqual(JSON.parse(r.toolCalls[0].arguments), { path: "a.txt" });
      assert.equal(r.toolCalls[1].id, "fixed_id");
      assert.deepEqual(JSON.parse(r.toolCalls[1].arguments), { command: 'echo "hi" && ls' });
      assert.notEqual(r.toolCalls[0].id, r.toolCalls[1].id);
      assert.ok(r.events.length > 8, "arguments arrive in several deltas");
    });

    await t.step("streams a reply that is only a tool call", async () => {
      const r = await a.collect(await post([user("[only-tool]")]));
      assert.equal(r.text, "");
      assert.deepEqual(r.toolCalls.map((c) => [c.name, c.arguments]), [["list", "{}"]]);
      assert.equal(r.done, true);
    });

    await t.step("reports scripted usage and estimates it otherwise", async () => {
      const r = await a.collect(await post([user("[usage]")]));
      assert.deepEqual(r.usage, { inputTokens: 123, outputTokens: 45 });
      const e = await a.collect(await post([user("[text] and a longer prompt to count")]));
      assert.ok(e.usage && e.usage.inputTokens > 1 && e.usage.outputTokens >= 1);
    });

    await t.step("ends as if the token limit were hit when finish is length", async () => {
      const r = await a.collect(await post([user("[length]")]));
      assert.equal(r.finish, a.finish.length);
    });

    await t.step("answers without streaming as one JSON body", async () => {
      const res = await post([user("[tools]")], { stream: false });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      const r = a.parse(await res.json());
      assert.equal(r.text, "Calling.");
      assert.equal(r.finish, a.finish.tools);
      assert.deepEqual(r.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]), [
        ["read_file", { path: "a.txt" }],
        ["run_shell", { command: 'echo "hi" && ls' }],
      ]);
      const u = a.parse(await (await post([user("[usage]")], { stream: false })).json());
      assert.deepEqual([u.inputTokens, u.outputTokens], [123, 45]);
    });

    await t.step("answers scripted HTTP errors with retry-after", async () => {
      const res = await post([user("[429]")]);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get("retry-after"), "7");
      assert.equal(a.errorOf(await res.json()).message, "Slow down");
      const s500 = await post([user("[500]")]);
      assert.equal(s500.status, 500);
      assert.ok(a.errorOf(await s500.json()).message.length > 0);
      const s401 = await post([user("[401]")], { stream: false });
      assert.equal(s401.status, 401);
      await s401.body?.cancel();
    });

    await t.step("drops the connection after N chunks", async () => {
      const r = await a.collect(await post([user("[drop]")]));
      assert.equal(r.disconnected, true);
      assert.equal(r.done, false);
      assert.equal(r.text, "ab");
      const r0 = await a.collect(await post([user("[drop0]")]));
      assert.equal(r0.disconnected, true);
      assert.equal(r0.text, "");
      const rt = await a.collect(await post([user("[drop-tool]")]));
      assert.equal(rt.disconnected, true);
      assert.equal(rt.toolCalls[0].arguments, '{"long":"xxx');
    });

    await t.step("drops a non-streaming reply halfway through the body", async () => {
      const res = await post([user("[drop]")], { stream: false });
      assert.equal(res.status, 200);
      await assert.rejects(res.text());
    });

    await t.step("sends a malformed line and carries on", async () => {
      const r = await a.collect(await post([user("[bad]")]));
      assert.deepEqual(r.malformed, ["{oops"]);
      assert.equal(r.text, "one two");
      assert.equal(r.done, true);
      const res = await post([user("[bad]")], { stream: false });
      assert.equal(res.status, 200);
      await assert.rejects(res.json());
    });

    await t.step("sends an in-stream error and ends the stream", async () => {
      const r = await a.collect(await post([user("[stream-error]")]));
      assert.deepEqual(r.error, { type: "overloaded_error", message: "Overloaded" });
      assert.equal(r.text, "one ");
      assert.equal(r.done, false);
      assert.equal(r.disconnected, false);
      const res = await post([user("[stream-error]")], { stream: false });
      assert.equal(res.status, 529);
      await res.body?.cancel();
    });

    await t.step("waits the scripted delay before each chunk through the given sleep", async () => {
      sleeps.length = 0;
      const r = await a.collect(await post([user("[slow]")]));
      assert.equal(r.text, "ab");
      assert.deepEqual(sleeps, [10, 40]);
      sleeps.length = 0;
      await (await post([user("[slow]")], { stream: false })).json();
      assert.deepEqual(sleeps, [50]);
    });

    await t.step("fills templates from the request", async () => {
      const r = await a.collect(await post([user("[model]")], { model: "m-large" }));
      assert.match(r.text, /^model=m-large request=\d+ turn=0$/);
      const follow = await a.collect(
        await post([
          user("[tools]"),
          { role: "assistant", toolCalls: [{ id: "c1", name: "read_file", arguments: "{}" }] },
          { role: "tool", results: [{ id: "c1", text: "file body" }] },
        ]),
      );
      assert.equal(follow.text, "Results: file body");
    });

    await t.step("answers the fallback when no turn matches", async () => {
      const r = await a.collect(await post([user("nothing scripted")]));
      assert.equal(r.text, "fallback");
    });

    await t.step("refuses a missing or wrong key with 401 and records no secret", async () => {
      const before = fake.requests.length;
      const wrong = await post([user("[text]")], { key: "sk-wrong-key-000" });
      assert.equal(wrong.status, 401);
      assert.ok(a.errorOf(await wrong.json()).message.length > 0);
      const headers = a.headers();
      const none = await fetch(fake.url + a.chatPath, {
        method: "POST",
        headers,
        body: JSON.stringify(a.body([user("[text]")])),
      });
      assert.equal(none.status, 401);
      await none.body?.cancel();
      const recorded = fake.requests.slice(before);
      assert.equal(recorded.length, 2);
      assert.ok(recorded.every((r) => r.status === 401 && r.turn === undefined));
      assert.ok(!JSON.stringify(fake.requests).includes("sk-test-key"));
      assert.ok(!JSON.stringify(fake.requests).includes("sk-wrong-key-000"));
    });

    await t.step("records method, path, redacted headers, body and the turn", async () => {
      fake.reset();
      await (await post([user("[text]")], { system: "Be brief" })).text();
      assert.equal(fake.requests.length, 1);
      const r = fake.requests[0];
      assert.equal(r.seq, 0);
      assert.equal(r.method, "POST");
      assert.equal(r.path, a.chatPath);
      assert.equal(r.status, 200);
      assert.equal(r.turn, 0);
      assert.equal(Object.values(r.headers).filter((v) => v === "[redacted]").length, 1);
      assert.equal(r.headers["content-type"], "application/json");
      assert.deepEqual(r.body, a.body([user("[text]")], { stream: true, system: "Be brief" }));
    });

    await t.step("counts requests per path and lists models", async () => {
      fake.reset();
      await (await post([user("[text]")])).text();
      await (await post([user("[text]")])).text();
      const models = await fetch(fake.url + "/v1/models", { headers: a.headers("sk-test-key") });
      assert.equal(models.status, 200);
      const ids = ((await models.json()).data as { id: string }[]).map((m) => m.id);
      assert.deepEqual(ids, ["m-small", "m-large"]);
      const missing = await fetch(fake.url + "/v1/nope", { headers: a.headers("sk-test-key") });
      assert.equal(missing.status, 404);
      assert.ok(a.errorOf(await missing.json()).message.includes("/v1/nope"));
      assert.deepEqual(fake.counts(), { [a.chatPath]: 2, "/v1/models": 1, "/v1/nope": 1 });
      assert.equal(fake.count(a.chatPath), 2);
      assert.equal(fake.count("/elsewhere"), 0);
    });

    await t.step("rejects a wrong method and a body that is not a chat request", async () => {
      const get = await fetch(fake.url + a.chatPath, { headers: a.headers("sk-test-key") });
      assert.equal(get.status, 405);
      await get.body?.cancel();
      const bad = await fetch(fake.url + a.chatPath, {
        method: "POST",
        headers: a.headers("sk-test-key"),
        body: "not json",
      });
      assert.equal(bad.status, 400);
      assert.equal(fake.requests.at(-1)!.body, "not json");
      await bad.body?.cancel();
      const noMessages = await fetch(fake.url + a.chatPath, {
        method: "POST",
        headers: a.headers("sk-test-key"),
        body: JSON.stringify({ model: "m", max_tokens: 5, messages: [] }),
      });
      assert.equal(noMessages.status, 400);
      await noMessages.body?.cancel();
    });

    await t.step("gives each of 100 parallel requests its own stream", async () => {
      fake.reset();
      const results = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const r = await a.collect(await post([user(`ping ${i}`)]));
          return { i, r };
        }),
      );
      for (const { i, r } of results) {
        assert.equal(r.text, `pong ${i}`);
        assert.equal(r.done, true);
        assert.deepEqual(JSON.parse(r.toolCalls[0].arguments), { n: String(i) });
      }
      const ids = new Set(results.map(({ r }) => r.toolCalls[0].id));
      assert.equal(ids.size, 100, "tool call ids are unique per request");
      assert.equal(fake.count(a.chatPath), 100);
      assert.deepEqual(
        fake.requests.map((r) => r.seq).sort((x, y) => x - y),
        Array.from({ length: 100 }, (_, i) => i),
      );
    });
  } finally {
    await fake.close();
  }

  await t.step("close() drops open streams instead of hanging", async () => {
    const stuck = await a.start({
      script: { turns: [{ reply: { text: ["first", "never"], delayMs: 5 } }] },
      sleep: (_ms, signal) =>
        new Promise((resolve) => signal.addEventListener("abort", () => resolve())),
    });
    const res = await fetch(stuck.url + a.chatPath, {
      method: "POST",
      headers: a.headers(),
      body: JSON.stringify(a.body([user("hi")])),
    });
    assert.equal(res.status, 200);
    const pending = a.collect(res);
    await stuck.close();
    const r = await pending;
    assert.equal(r.disconnected, true);
    assert.equal(r.done, false);
  });
}
