import assert from "node:assert/strict";
import { ManualClock } from "../../kernel/mod.ts";
import { startOpenAiFake } from "./openai_fake.ts";
import { collectOpenAiStream } from "./stream_client.ts";
import { readSse } from "./sse_reader.ts";
import { runFakeSuite } from "./_fake_suite.ts";
import { openAiAdapter } from "./_adapters.ts";
import { runFakeExpectingFailure, spawnFake } from "./_standalone.ts";

type Obj = Record<string, unknown>;

Deno.test("startOpenAiFake() passes the shared fake suite", async (t) => {
  await runFakeSuite(t, openAiAdapter);
});

Deno.test("startOpenAiFake() speaks the Chat Completions wire format", async (t) => {
  const fake = await startOpenAiFake({
    script: {
      turns: [
        {
          match: { lastMessage: "tools" },
          reply: { text: "Hi", toolCalls: [{ name: "a", arguments: { x: 1 } }, { name: "b" }] },
        },
        { match: { system: "STRICT", lastMessage: "sys" }, reply: { text: "system seen" } },
        { match: { toolResults: true, role: "tool" }, reply: { text: "{{lastMessage}}" } },
        { match: { lastMessage: "no-text" }, reply: { toolCalls: [{ name: "a" }] } },
        { match: { lastMessage: "[429]" }, reply: { error: { status: 429, retryAfter: 3 } } },
        { match: { lastMessage: "[500]" }, reply: { error: { status: 500 } } },
        { reply: { text: ["a", "b"] } },
      ],
    },
    apiKey: "sk-live-abcdefgh1234",
    clock: new ManualClock(1_700_000_000_000),
  });
  const headers = {
    "content-type": "application/json",
    authorization: "Bearer sk-live-abcdefgh1234",
  };
  const post = (body: Obj) =>
    fetch(`${fake.baseUrl}/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
  try {
    await t.step(
      "frames each chunk as one data line and a blank line, ending with [DONE]",
      async () => {
        const res = await post({
          model: "gpt-x",
          stream: true,
          messages: [{ role: "user", content: "hello" }],
        });
        assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
        const raw = await res.text();
        assert.ok(raw.endsWith("data: [DONE]\n\n"));
        const blocks = raw.slice(0, -2).split("\n\n");
        assert.ok(blocks.every((b) => b.startsWith("data: ") && !b.includes("\n")));
        const chunks = blocks.slice(0, -1).map((b) => JSON.parse(b.slice(6)));
        for (const c of chunks) {
          assert.equal(c.object, "chat.completion.chunk");
          assert.equal(c.id, chunks[0].id);
          assert.equal(c.created, 1_700_000_000);
          assert.equal(c.model, "gpt-x");
          assert.equal("usage" in c, false, "no usage field unless include_usage");
        }
        assert.deepEqual(chunks[0].choices[0].delta, {
          role: "assistant",
          content: "",
          refusal: null,
        });
        assert.deepEqual(chunks.slice(1, 3).map((c) => c.choices[0].delta), [{ content: "a" }, {
          content: "b",
        }]);
        assert.deepEqual(chunks.at(-1).choices[0], {
          index: 0,
          delta: {},
          logprobs: null,
          finish_reason: "stop",
        });
      },
    );

    await t.step("sends the usage chunk with empty choices before [DONE] when asked", async () => {
      const res = await post({
        model: "gpt-x",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "hello" }],
      });
      const events = [];
      for await (const ev of readSse(res.body!)) events.push(ev.data);
      assert.equal(events.at(-1), "[DONE]");
      const usage = JSON.parse(events.at(-2)!);
      assert.deepEqual(usage.choices, []);
      assert.deepEqual(Object.keys(usage.usage), [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
      ]);
      assert.equal(
        usage.usage.total_tokens,
        usage.usage.prompt_tokens + usage.usage.completion_tokens,
      );
      for (const d of events.slice(0, -2)) assert.equal(JSON.parse(d).usage, null);
    });

    await t.step(
      "opens each tool call with id, type and name, then streams arguments",
      async () => {
        // the third chat request of this server, so ids carry request number 2
        const res = await post({
          model: "gpt-x",
          stream: true,
          messages: [{ role: "user", content: "tools" }],
        });
        const deltas = [];
        for await (const ev of readSse(res.body!)) {
          if (ev.data !== "[DONE]") deltas.push(JSON.parse(ev.data).choices[0].delta);
        }
        const calls = deltas.filter((d) => d.tool_calls).map((d) => d.tool_calls[0]);
        assert.deepEqual(calls[0], {
          index: 0,
          id: "call_fake_2_0",
          type: "function",
          function: { name: "a", arguments: "" },
        });
        assert.deepEqual(calls[1], { index: 0, function: { arguments: '{"x":1}' } });
        assert.deepEqual(calls[2], {
          index: 1,
          id: "call_fake_2_1",
          type: "function",
          function: { name: "b", arguments: "" },
        });
        assert.deepEqual(calls[3], { index: 1, function: { arguments: "{}" } });
      },
    );

    await t.step("starts a tool-only reply with null content", async () => {
      const json =
        await (await post({ model: "m", messages: [{ role: "user", content: "no-text" }] })).json();
      assert.equal(json.object, "chat.completion");
      assert.equal(json.choices[0].message.content, null);
      assert.equal(json.choices[0].finish_reason, "tool_calls");
      const res = await post({
        model: "m",
        stream: true,
        messages: [{ role: "user", content: "no-text" }],
      });
      const first = (await readSse(res.body!).next()).value!;
      assert.equal(JSON.parse(first.data).choices[0].delta.content, null);
      await res.body?.cancel().catch(() => {});
    });

    await t.step("reads system and developer messages and merges tool results", async () => {
      const r1 = await collectOpenAiStream(
        await post({
          model: "m",
          stream: true,
          messages: [{ role: "developer", content: [{ type: "text", text: "be STRICT" }] }, {
            role: "user",
            content: "sys",
          }],
        }),
      );
      assert.equal(r1.text, "system seen");
      const r2 = await collectOpenAiStream(
        await post({
          model: "m",
          stream: true,
          messages: [
            { role: "user", content: "go" },
            {
              role: "assistant",
              content: null,
              tool_calls: [{ id: "1", type: "function", function: { name: "a", arguments: "{}" } }],
            },
            { role: "tool", tool_call_id: "1", content: "one" },
            { role: "tool", tool_call_id: "2", content: [{ type: "text", text: "two" }] },
          ],
        }),
      );
      assert.equal(r2.text, "one\ntwo");
    });

    await t.step("shapes errors as {error: {message, type, param, code}}", async () => {
      const r429 = await post({ model: "m", messages: [{ role: "user", content: "[429]" }] });
      assert.equal(r429.status, 429);
      assert.equal(r429.headers.get("retry-after"), "3");
      assert.deepEqual((await r429.json()).error, {
        message: "Rate limit reached for requests",
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      });
      const r500 = await post({ model: "m", messages: [{ role: "user", content: "[500]" }] });
      assert.equal((await r500.json()).error.type, "server_error");
      const bad = await fetch(`${fake.baseUrl}/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer sk-nope-99999999" },
        body: "{}",
      });
      assert.equal(bad.status, 401);
      const err = (await bad.json()).error;
      assert.equal(err.code, "invalid_api_key");
      assert.equal(err.message, "Incorrect API key provided: sk-...9999");
      const none = await fetch(`${fake.baseUrl}/chat/completions`, { method: "POST", body: "{}" });
      assert.equal(none.status, 401);
      assert.match((await none.json()).error.message, /didn't provide an API key/);
      const noModel = await post({ messages: [{ role: "user", content: "x" }] });
      assert.equal(noModel.status, 400);
      assert.equal((await noModel.json()).error.type, "invalid_request_error");
    });

    await t.step("lists models as {object: list, data: [{id, object: model}]}", async () => {
      const res = await fetch(`${fake.baseUrl}/models`, { headers });
      assert.deepEqual(await res.json(), {
        object: "list",
        data: [{
          id: "fake-model",
          object: "model",
          created: 1_700_000_000,
          owned_by: "astrid-fake",
        }],
      });
    });
  } finally {
    await fake.close();
  }
});

Deno.test("openai_fake.ts run as a process prints its URL and serves the script", async (t) => {
  await t.step("serves the demo script with a replaced constant", async () => {
    const proc = await spawnFake("./openai_fake.ts", [
      "--script",
      "demo",
      "--port",
      "0",
      "--set",
      "READ_TOOL=fs_read",
    ]);
    try {
      const res = await fetch(`${proc.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({
          model: "m",
          stream: true,
          messages: [{ role: "user", content: "go" }],
        }),
      });
      const r = await collectOpenAiStream(res);
      assert.equal(r.toolCalls[0].name, "fs_read");
      assert.deepEqual(JSON.parse(r.toolCalls[0].arguments), { path: "notes.md" });
    } finally {
      assert.equal(await proc.stop(), 0);
    }
  });

  await t.step("checks the key given with --api-key", async () => {
    const proc = await spawnFake("./openai_fake.ts", [
      "--script",
      "tests/fakes/scripts/errors.json",
      "--api-key",
      "k1",
    ]);
    try {
      const res = await fetch(`${proc.url}/v1/models`, { headers: { authorization: "Bearer k2" } });
      assert.equal(res.status, 401);
      await res.body?.cancel();
    } finally {
      await proc.stop();
    }
  });

  await t.step("exits 2 with a message naming the bad argument", async () => {
    const port = await runFakeExpectingFailure("./openai_fake.ts", ["--port", "http"]);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /Invalid --port "http"/);
    const missing = await runFakeExpectingFailure("./openai_fake.ts", [
      "--script",
      "no_such_script",
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot load fake script ".*no_such_script\.json"/);
  });
});
