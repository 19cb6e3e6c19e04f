import assert from "node:assert/strict";
import { ManualClock } from "../../kernel/mod.ts";
import { startAnthropicFake } from "./anthropic_fake.ts";
import { collectAnthropicStream } from "./stream_client.ts";
import { readSse } from "./sse_reader.ts";
import { runFakeSuite } from "./_fake_suite.ts";
import { anthropicAdapter } from "./_adapters.ts";
import { spawnFake } from "./_standalone.ts";

type Obj = Record<string, unknown>;

Deno.test("startAnthropicFake() passes the shared fake suite", async (t) => {
  await runFakeSuite(t, anthropicAdapter);
});

Deno.test("startAnthropicFake() speaks the Messages wire format", async (t) => {
  const fake = await startAnthropicFake({
    script: {
      models: ["claude-fake"],
      turns: [
        {
          match: { lastMessage: "both" },
          reply: {
            text: ["Hi", "!"],
            toolCalls: [{ name: "get", arguments: { q: "x" } }],
            usage: { inputTokens: 9, outputTokens: 4 },
          },
        },
        {
          match: { lastMessage: "tool-only" },
          reply: { toolCalls: [{ name: "a" }, { name: "b", arguments: { n: 2 } }] },
        },
        { match: { system: "SYS", lastMessage: "sys" }, reply: { text: "system seen" } },
        { match: { toolResults: true }, reply: { text: "{{lastMessage}}" } },
        { match: { lastMessage: "[429]" }, reply: { error: { status: 429, retryAfter: 5 } } },
        { match: { lastMessage: "[529]" }, reply: { error: { status: 529 } } },
        { match: { lastMessage: "[500]" }, reply: { error: { status: 500 } } },
        { reply: { text: "plain" } },
      ],
    },
    apiKey: "sk-ant-test",
    clock: new ManualClock(1_700_000_000_000),
  });
  const headers = {
    "content-type": "application/json",
    "anthropic-version": "2023-06-01",
    "x-api-key": "sk-ant-test",
  };
  const post = (body: Obj, h: Record<string, string> = headers) =>
    fetch(`${fake.baseUrl}/v1/messages`, {
      method: "POST",
      headers: h,
      body: JSON.stringify(body),
    });
  const ask = (content: unknown, extra: Obj = {}) =>
    post({
      model: "claude-x",
      max_tokens: 100,
      stream: true,
      messages: [{ role: "user", content }],
      ...extra,
    });
  try {
    await t.step("pairs each event line with a data line of the same type", async () => {
      const res = await ask("both");
      assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const raw = await res.text();
      assert.ok(raw.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n'));
      const blocks = raw.slice(0, -2).split("\n\n");
      const events = blocks.map((b) => {
        const [ev, data, ...rest] = b.split("\n");
        assert.equal(rest.length, 0);
        assert.ok(ev.startsWith("event: ") && data.startsWith("data: "));
        const json = JSON.parse(data.slice(6));
        assert.equal(json.type, ev.slice(7));
        return json;
      });
      assert.deepEqual(events.map((e) => e.type), [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
      ]);
      assert.deepEqual(events[0].message, {
        id: "msg_fake_0",
        type: "message",
        role: "assistant",
        model: "claude-x",
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 9, output_tokens: 1 },
      });
      assert.deepEqual(events[1].content_block, { type: "text", text: "" });
      assert.deepEqual(events[3].delta, { type: "text_delta", text: "Hi" });
      assert.deepEqual(events[6], {
        type: "content_block_start",
        index: 1,
        content_block: { type: "tool_use", id: "toolu_fake_0_0", name: "get", input: {} },
      });
      assert.deepEqual(events[7].delta, { type: "input_json_delta", partial_json: '{"q":"x"}' });
      assert.deepEqual(events[9], {
        type: "message_delta",
        delta: { stop_reason: "tool_use", stop_sequence: null },
        usage: { output_tokens: 4 },
      });
    });

    await t.step("numbers tool_use blocks from 0 when there is no text", async () => {
      const types: string[] = [];
      const starts: Obj[] = [];
      for await (const ev of readSse((await ask("tool-only")).body!)) {
        types.push(ev.event);
        const j = JSON.parse(ev.data);
        if (j.type === "content_block_start") starts.push(j);
      }
      assert.deepEqual(types.slice(0, 3), ["message_start", "content_block_start", "ping"]);
      assert.deepEqual(starts.map((s) => [s.index, (s.content_block as Obj).name]), [[0, "a"], [
        1,
        "b",
      ]]);
    });

    await t.step("answers without streaming as a message with content blocks", async () => {
      const json = await (await ask("both", { stream: false })).json();
      assert.deepEqual(json, {
        id: "msg_fake_2",
        type: "message",
        role: "assistant",
        model: "claude-x",
        content: [
          { type: "text", text: "Hi!" },
          { type: "tool_use", id: "toolu_fake_2_0", name: "get", input: { q: "x" } },
        ],
        stop_reason: "tool_use",
        stop_sequence: null,
        usage: { input_tokens: 9, output_tokens: 4 },
      });
    });

    await t.step(
      "reads the system prompt as a string or blocks and tool_result blocks as tool results",
      async () => {
        const r1 = await collectAnthropicStream(
          await ask("sys", { system: [{ type: "text", text: "be SYS" }] }),
        );
        assert.equal(r1.text, "system seen");
        const r2 = await collectAnthropicStream(
          await post({
            model: "m",
            max_tokens: 10,
            stream: true,
            messages: [
              { role: "user", content: "go" },
              {
                role: "assistant",
                content: [{ type: "tool_use", id: "t1", name: "get", input: {} }],
              },
              {
                role: "user",
                content: [
                  {
                    type: "tool_result",
                    tool_use_id: "t1",
                    content: [{ type: "text", text: "result one" }],
                  },
                  { type: "tool_result", tool_use_id: "t2", content: "result two", is_error: true },
                ],
              },
            ],
          }),
        );
        assert.equal(r2.text, "result one\nresult two");
      },
    );

    await t.step("shapes errors as {type: error, error: {type, message}, request_id}", async () => {
      const r429 = await ask("[429]");
      assert.equal(r429.status, 429);
      assert.equal(r429.headers.get("retry-after"), "5");
      assert.equal(r429.headers.get("request-id"), (await r429.clone().json()).request_id);
      assert.deepEqual((await r429.json()).error, {
        type: "rate_limit_error",
        message: "Number of requests has exceeded your rate limit",
      });
      const r529 = await ask("[529]");
      assert.equal(r529.status, 529);
      assert.equal((await r529.json()).error.type, "overloaded_error");
      assert.equal((await (await ask("[500]")).json()).error.type, "api_error");
      const wrong = await post({}, { ...headers, "x-api-key": "nope" });
      assert.equal(wrong.status, 401);
      assert.deepEqual((await wrong.json()).error, {
        type: "authentication_error",
        message: "invalid x-api-key",
      });
    });

    await t.step("requires anthropic-version and max_tokens", async () => {
      const { "anthropic-version": _, ...noVersion } = headers;
      const res = await post({
        model: "m",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      }, noVersion);
      assert.equal(res.status, 400);
      assert.deepEqual((await res.json()).error, {
        type: "invalid_request_error",
        message: "anthropic-version: header is required",
      });
      const noMax = await post({ model: "m", messages: [{ role: "user", content: "x" }] });
      assert.equal(noMax.status, 400);
      assert.equal((await noMax.json()).error.message, "max_tokens: Field required");
    });

    await t.step(
      "lists models as {data: [{type: model, id, display_name, created_at}]}",
      async () => {
        const res = await fetch(`${fake.baseUrl}/v1/models`, { headers });
        assert.deepEqual(await res.json(), {
          data: [{
            type: "model",
            id: "claude-fake",
            display_name: "claude-fake",
            created_at: "2023-11-14T22:13:20.000Z",
          }],
          has_more: false,
          first_id: "claude-fake",
          last_id: "claude-fake",
        });
      },
    );
  } finally {
    await fake.close();
  }
});

Deno.test("anthropic_fake.ts run as a process prints its URL and serves the script", async () => {
  const proc = await spawnFake("./anthropic_fake.ts", ["--script", "session"]);
  try {
    const res = await fetch(`${proc.url}/v1/messages`, {
      method: "POST",
      headers: { "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: "m",
        max_tokens: 50,
        stream: true,
        messages: [{ role: "user", content: "The codeword is heron." }],
      }),
    });
    const r = await collectAnthropicStream(res);
    assert.equal(r.text, "Noted: the codeword is heron.");
  } finally {
    assert.equal(await proc.stop(), 0);
  }
});
