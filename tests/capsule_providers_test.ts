/**
 * The provider capsules end to end: `provider-openai-compat` and `provider-anthropic` are built
 * (cached), installed into a temporary `ASTRID_HOME` and run by the real kernel in-process; the
 * scripted fakes of `tests/fakes/` play the model servers (`demo.json`, `multi_tool.json`,
 * `errors.json`). Each step publishes `llm.v1.request.generate.<provider>` and reads what comes
 * back on `llm.v1.stream.<provider>`: text deltas, tool calls with parsed arguments, usage, and
 * each error mapping (401, 429 then success, 429 for good, 500, 500 once, disconnect, malformed
 * line, in-stream error, 529).
 *
 * The shipped manifests allow only real hosts and the usual local ports, and loopback needs a
 * `net` entry naming the host exactly (the SSRF rule), so the test builds a copy of each capsule
 * whose `net` list is `["127.0.0.1:*"]` (stable text, so the build cache still hits).
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { BusMessage, JsonValue } from "../kernel/events/mod.ts";
import {
  type CapsuleHarness,
  messageJson,
  testBuildCacheDir,
  testCapsule,
} from "../sdk/testing/mod.ts";
import { type FakeServer, startAnthropicFake, startOpenAiFake } from "./fakes/mod.ts";
import { setCapsuleEnv } from "./fixtures/capsule_env.ts";
import { loopbackCopy } from "./fixtures/loopback_capsule.ts";
import { buildCapsule } from "../sdk/build/mod.ts";

const KEY = "sk-test-providers-0123456789";

interface StreamEvent {
  type: string;
  request_id: string;
  session?: string;
  workspace_id?: string;
  text?: string;
  call_id?: string;
  name?: string;
  arguments?: Record<string, JsonValue>;
  stop_reason?: string;
  model?: string;
  usage?: { input_tokens: number; output_tokens: number; model: string };
  error?: { kind: string; message: string; status?: number; retry_after_ms?: number };
}

interface Reply {
  events: StreamEvent[];
  messages: BusMessage[];
  text: string;
  toolCalls: StreamEvent[];
  last: StreamEvent;
}

interface ProviderCase {
  capsule: string;
  provider: string;
  start: typeof startOpenAiFake;
  /** BASE_URL for a fake. */
  baseUrl: (fake: FakeServer) => string;
  /** The chat path the fake serves. */
  path: string;
}

const CASES: ProviderCase[] = [
  {
    capsule: "provider-openai-compat",
    provider: "openai",
    start: startOpenAiFake,
    baseUrl: (fake) => fake.baseUrl,
    path: "/v1/chat/completions",
  },
  {
    capsule: "provider-anthropic",
    provider: "anthropic",
    start: startAnthropicFake,
    baseUrl: (fake) => fake.url,
    path: "/v1/messages",
  },
];

/** The raw SSE body a fake sends for one request, fetched like a real client would. */
async function rawStream(c: ProviderCase, fake: FakeServer): Promise<Uint8Array> {
  const messages = [{ role: "user", content: "go" }];
  const res = c.provider === "openai"
    ? await fetch(`${fake.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "fake-model",
        stream: true,
        stream_options: { include_usage: true },
        messages,
      }),
    })
    : await fetch(`${fake.url}/v1/messages`, {
      method: "POST",
      headers: {
        "x-api-key": KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
      },
      body: JSON.stringify({ model: "fake-model", max_tokens: 100, stream: true, messages }),
    });
  assert.equal(res.status, 200);
  return new Uint8Array(await res.arrayBuffer());
}

/** Serves `body` as an event stream in pieces of 1 to 7 bytes, yielding between pieces. */
function dribble(body: Uint8Array): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    let at = 0;
    let step = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at >= body.length) {
          controller.close();
          return;
        }
        const size = (step++ * 3) % 7 + 1;
        controller.enqueue(body.slice(at, at + size));
        at += size;
        await new Promise((r) => setTimeout(r, 0));
      },
    });
    return new Response(stream, { headers: { "content-type": "text/event-stream" } });
  });
}

let counter = 0;

async function generate(
  h: CapsuleHarness,
  provider: string,
  payload: Record<string, JsonValue>,
): Promise<Reply> {
  const requestId = `r-${++counter}`;
  const messages = await h.collect(
    `llm.v1.stream.${provider}`,
    () =>
      h.publish(`llm.v1.request.generate.${provider}`, {
        request_id: requestId,
        session: "s-1",
        model: "fake-model",
        max_tokens: 1024,
        ...payload,
      }, { requestId }),
    { until: (m) => m.end_of_stream === true && m.request_id === requestId, timeoutMs: 30_000 },
  );
  const mine = messages.filter((m) => m.request_id === requestId);
  const events = mine.map((m) => messageJson<StreamEvent>(m));
  for (const e of events) {
    assert.equal(e.request_id, requestId);
    assert.equal(e.session, "s-1");
  }
  assert.equal(
    mine.filter((m) => m.end_of_stream).length,
    1,
    "exactly one message ends the stream",
  );
  return {
    events,
    messages: mine,
    text: events.filter((e) => e.type === "text_delta").map((e) => e.text).join(""),
    toolCalls: events.filter((e) => e.type === "tool_call"),
    last: events[events.length - 1],
  };
}

const user = (content: string) => [{ role: "user", content }];

const READ_TOOLS: { name: string; description: string; input_schema: JsonValue }[] = [
  {
    name: "read_file",
    description: "Reads a file",
    input_schema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
  },
  {
    name: "write_file",
    description: "Writes a file",
    input_schema: {
      type: "object",
      properties: { path: { type: "string" }, content: { type: "string" } },
    },
  },
  {
    name: "run_shell",
    description: "Runs a command",
    input_schema: { type: "object", properties: { command: { type: "string" } } },
  },
];

for (const c of CASES) {
  Deno.test(`${c.capsule} streams answers, tool calls and usage, and maps every error`, async (t) => {
    const copies = await Deno.makeTempDir({ dir: "/tmp", prefix: `astrid-${c.capsule}-` });
    const dir = await loopbackCopy(c.capsule, copies);
    const demo = await c.start({ script: "demo", apiKey: KEY });
    const multi = await c.start({ script: "multi_tool", apiKey: KEY });
    const errors = await c.start({ script: "errors", apiKey: KEY });
    const h = await testCapsule(dir, {
      mode: "autonomous",
      // Model calls are metered before the provider sees them: price the fake model.
      configToml:
        `[pricing."${c.provider}/fake-model"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n`,
      build: { cacheDir: testBuildCacheDir() },
      env: { API_KEY: KEY, BASE_URL: c.baseUrl(demo), MODEL: "fake-model", RETRY_WAIT_MAX_MS: "0" },
    });
    const envOf = { home: h.home, capsule: c.capsule };
    try {
      await t.step(
        "a first turn streams its text, one tool call with parsed arguments, and usage",
        async () => {
          const reply = await generate(h, c.provider, {
            system: "You are a test.",
            messages: user("Summarise notes.md"),
            tools: READ_TOOLS,
          });
          assert.equal(reply.text, "I'll start by reading notes.md to see what it says.");
          assert.ok(
            reply.events.filter((e) => e.type === "text_delta").length >= 3,
            "several deltas",
          );
          assert.equal(reply.toolCalls.length, 1);
          assert.equal(reply.toolCalls[0].name, "read_file");
          assert.deepEqual(reply.toolCalls[0].arguments, { path: "notes.md" });
          assert.ok((reply.toolCalls[0].call_id ?? "").length > 0);
          assert.equal(reply.last.type, "final");
          assert.equal(reply.last.stop_reason, "tool_use");
          assert.equal(reply.last.usage?.model, "fake-model");
          assert.ok((reply.last.usage?.input_tokens ?? 0) > 0, "input tokens reported");
          assert.ok((reply.last.usage?.output_tokens ?? 0) > 0, "output tokens reported");
          assert.equal(reply.messages[reply.messages.length - 1].end_of_stream, true);
        },
      );

      await t.step("the request sent speaks the provider's wire format and carries the key", () => {
        const req = demo.requests[demo.requests.length - 1];
        assert.equal(req.path, c.path);
        const body = req.body as Record<string, JsonValue>;
        assert.equal(body.stream, true);
        assert.equal(body.model, "fake-model");
        if (c.provider === "openai") {
          assert.equal(req.headers.authorization, "[redacted]");
          assert.deepEqual(body.stream_options, { include_usage: true });
          const messages = body.messages as { role: string; content: string }[];
          assert.deepEqual(messages[0], { role: "system", content: "You are a test." });
          const tools = body.tools as {
            type: string;
            function: { name: string; parameters: JsonValue };
          }[];
          assert.equal(tools[0].type, "function");
          assert.equal(tools[0].function.name, "read_file");
          assert.deepEqual(tools[0].function.parameters, READ_TOOLS[0].input_schema);
        } else {
          assert.equal(req.headers["x-api-key"], "[redacted]");
          assert.ok(typeof req.headers["anthropic-version"] === "string");
          assert.equal(body.system, "You are a test.");
          assert.equal(body.max_tokens, 1024);
          const tools = body.tools as { name: string; input_schema: JsonValue }[];
          assert.equal(tools[0].name, "read_file");
          assert.deepEqual(tools[0].input_schema, READ_TOOLS[0].input_schema);
        }
      });

      await t.step("a turn with a tool result continues the conversation", async () => {
        const reply = await generate(h, c.provider, {
          messages: [
            { role: "user", content: "Summarise notes.md" },
            {
              role: "assistant",
              content: "I'll read it.",
              tool_calls: [{ call_id: "c-1", name: "read_file", arguments: { path: "notes.md" } }],
            },
            { role: "tool", call_id: "c-1", content: "line one\nline two" },
          ],
          tools: READ_TOOLS,
        });
        assert.equal(reply.text, "Got it. Now I'll write a short summary to summary.md.");
        assert.equal(reply.toolCalls.length, 1);
        assert.equal(reply.toolCalls[0].name, "write_file");
        assert.deepEqual(reply.toolCalls[0].arguments, {
          path: "summary.md",
          content: "# Summary\n\nThe notes were read and summarised by the Astrid demo.\n",
        });
        const body = demo.requests[demo.requests.length - 1].body as { messages: JsonValue[] };
        if (c.provider === "openai") {
          assert.deepEqual(body.messages[1], {
            role: "assistant",
            content: "I'll read it.",
            tool_calls: [{
              id: "c-1",
              type: "function",
              function: { name: "read_file", arguments: '{"path":"notes.md"}' },
            }],
          });
          assert.deepEqual(body.messages[2], {
            role: "tool",
            tool_call_id: "c-1",
            content: "line one\nline two",
          });
        } else {
          assert.deepEqual(body.messages[1], {
            role: "assistant",
            content: [
              { type: "text", text: "I'll read it." },
              { type: "tool_use", id: "c-1", name: "read_file", input: { path: "notes.md" } },
            ],
          });
          assert.deepEqual(body.messages[2], {
            role: "user",
            content: [{ type: "tool_result", tool_use_id: "c-1", content: "line one\nline two" }],
          });
        }
      });

      await t.step(
        "parallel tool calls come out in order, each with its own arguments",
        async () => {
          await setCapsuleEnv(envOf, { BASE_URL: c.baseUrl(multi) });
          const reply = await generate(h, c.provider, {
            messages: user("look around"),
            tools: READ_TOOLS,
          });
          assert.deepEqual(
            reply.toolCalls.map((e) => [e.name, e.arguments]),
            [["read_file", { path: "a.txt" }], ["read_file", { path: "b.txt" }], ["run_shell", {
              command: "ls",
            }]],
          );
          assert.equal(new Set(reply.toolCalls.map((e) => e.call_id)).size, 3, "distinct call ids");
          assert.equal(reply.last.stop_reason, "tool_use");
        },
      );

      await t.step(
        "events split anywhere, inside lines and inside UTF-8 characters, parse the same",
        async () => {
          const unicode = await c.start({
            script: {
              turns: [{
                reply: {
                  text: ["Grüße ", "aus 🚀 Köln, ", "naïve café."],
                  toolCalls: [{ name: "read_file", arguments: { path: "ä/😀.txt", n: 2 } }],
                  argumentChunkSize: 3,
                },
              }],
            },
          });
          const body = await rawStream(c, unicode);
          await unicode.close();
          const server = dribble(body);
          try {
            const base = `http://127.0.0.1:${server.addr.port}`;
            await setCapsuleEnv(envOf, { BASE_URL: c.provider === "openai" ? `${base}/v1` : base });
            const reply = await generate(h, c.provider, { messages: user("go") });
            assert.equal(reply.text, "Grüße aus 🚀 Köln, naïve café.");
            assert.deepEqual(reply.toolCalls.map((e) => [e.name, e.arguments]), [
              ["read_file", { path: "ä/😀.txt", n: 2 }],
            ]);
            assert.equal(reply.last.type, "final");
            assert.ok((reply.last.usage?.output_tokens ?? 0) > 0);
          } finally {
            await server.shutdown();
          }
        },
      );

      await t.step("llm.v1.request.describe is answered with the configured model", async () => {
        const msg = await h.waitFor(
          `llm.v1.response.describe.${c.provider}`,
          () => h.publish("llm.v1.request.describe", { request_id: "d-1" }, { requestId: "d-1" }),
        );
        const value = messageJson<
          { provider: string; request_id: string; models: { id: string }[] }
        >(msg);
        assert.equal(value.provider, c.provider);
        assert.equal(value.request_id, "d-1");
        assert.equal(value.models[0].id, "fake-model");
      });

      await setCapsuleEnv(envOf, { BASE_URL: c.baseUrl(errors) });
      const count = () => errors.count(c.path);

      await t.step("a wrong key is a provider_auth error naming the API_KEY setting", async () => {
        await setCapsuleEnv(envOf, { API_KEY: "sk-wrong" });
        const reply = await generate(h, c.provider, { messages: user("hello") });
        await setCapsuleEnv(envOf, { API_KEY: KEY });
        assert.equal(reply.last.type, "error");
        assert.equal(reply.last.error?.kind, "provider_auth");
        assert.equal(reply.last.error?.status, 401);
        assert.match(reply.last.error?.message ?? "", /API_KEY/);
        assert.equal(reply.events.length, 1);
      });

      await t.step("a 401 from the server is the same error", async () => {
        const reply = await generate(h, c.provider, { messages: user("[401]") });
        assert.equal(reply.last.error?.kind, "provider_auth");
      });

      await t.step("a 429 is retried after its retry-after and then succeeds", async () => {
        const before = count();
        const reply = await generate(h, c.provider, { messages: user("[429]") });
        assert.equal(reply.text, "Recovered after the rate limit.");
        assert.equal(reply.last.type, "final");
        assert.equal(count() - before, 2);
        const log = await h.logText({ waitFor: "retry-after 1000 ms" });
        assert.match(log, /retry-after 1000 ms\): waiting 0 ms, retry 1 of 2/);
      });

      await t.step(
        "a 429 that persists ends as provider_rate_limited after the retries",
        async () => {
          const before = count();
          const reply = await generate(h, c.provider, { messages: user("[429-always]") });
          assert.equal(reply.last.error?.kind, "provider_rate_limited");
          assert.equal(reply.last.error?.status, 429);
          assert.equal(reply.last.error?.retry_after_ms, 1000);
          assert.equal(count() - before, 3, "the first try and MAX_RETRIES (2) retries");
        },
      );

      await t.step("a 500 is retried once, then a provider error", async () => {
        const before = count();
        const reply = await generate(h, c.provider, { messages: user("[500]") });
        assert.equal(reply.last.error?.kind, "provider");
        assert.equal(reply.last.error?.status, 500);
        assert.match(reply.last.error?.message ?? "", /HTTP 500/);
        assert.equal(count() - before, 2);
      });

      await t.step("a 500 once is retried and the answer streams", async () => {
        const reply = await generate(h, c.provider, { messages: user("[500-once]") });
        assert.equal(reply.text, "Recovered after a server error.");
        assert.equal(reply.last.type, "final");
      });

      await t.step(
        "a mid-stream disconnect ends with an error after the deltas, never a hang",
        async () => {
          const before = count();
          const reply = await generate(h, c.provider, { messages: user("[disconnect]") });
          assert.equal(reply.text, "This answer will be cut ");
          assert.equal(reply.last.type, "error");
          assert.equal(reply.last.error?.kind, "provider");
          assert.match(reply.last.error?.message ?? "", /incomplete/);
          if (Deno.env.get("SHOW_PROVIDER_LOG")) console.log(reply.last.error?.message);
          assert.equal(count() - before, 1, "no retry once deltas went out");
        },
      );

      await t.step("a malformed stream line is an error event", async () => {
        const reply = await generate(h, c.provider, { messages: user("[malformed]") });
        assert.equal(reply.text, "Before the bad line. ");
        assert.equal(reply.last.error?.kind, "provider");
        assert.match(reply.last.error?.message ?? "", /malformed/);
      });

      await t.step("an in-stream error event ends the stream with an error", async () => {
        const reply = await generate(h, c.provider, { messages: user("[stream-error]") });
        assert.equal(reply.text, "Partial answer ");
        assert.equal(reply.last.error?.kind, "provider");
        assert.match(reply.last.error?.message ?? "", /Overloaded/);
      });

      await t.step(
        "a stream that fails before any delta is retried once and then answers",
        async () => {
          const flaky = await c.start({
            apiKey: KEY,
            script: {
              turns: [
                {
                  times: 1,
                  reply: {
                    text: ["never seen"],
                    streamError: { afterChunks: 0, type: "api_error" },
                  },
                },
                { reply: { text: ["Second ", "try."] } },
              ],
            },
          });
          try {
            await setCapsuleEnv(envOf, { BASE_URL: c.baseUrl(flaky) });
            const reply = await generate(h, c.provider, { messages: user("go") });
            assert.equal(reply.text, "Second try.");
            assert.equal(reply.last.type, "final");
            assert.equal(flaky.count(c.path), 2);
          } finally {
            await setCapsuleEnv(envOf, { BASE_URL: c.baseUrl(errors) });
            await flaky.close();
          }
        },
      );

      await t.step("a cut-off answer ends with stop_reason max_tokens", async () => {
        const reply = await generate(h, c.provider, { messages: user("[length]") });
        assert.equal(reply.last.type, "final");
        assert.equal(reply.last.stop_reason, "max_tokens");
      });

      if (c.provider === "anthropic") {
        await t.step(
          "an empty API key fails at once, naming the setting, without a request",
          async () => {
            const before = count();
            await setCapsuleEnv(envOf, { API_KEY: "" });
            const reply = await generate(h, c.provider, { messages: user("hello") });
            await setCapsuleEnv(envOf, { API_KEY: KEY });
            assert.equal(reply.last.error?.kind, "provider_auth");
            assert.match(reply.last.error?.message ?? "", /API_KEY/);
            assert.equal(count() - before, 0);
          },
        );
        await t.step("a 529 overloaded is retried once, then reported as overloaded", async () => {
          const before = count();
          const reply = await generate(h, c.provider, { messages: user("[529]") });
          assert.equal(reply.last.error?.kind, "provider");
          assert.equal(reply.last.error?.status, 529);
          assert.match(reply.last.error?.message ?? "", /overloaded/);
          assert.equal(count() - before, 2);
        });
      }

      await t.step(
        "a host the net capability does not name is refused with a clear error",
        async () => {
          await setCapsuleEnv(envOf, { BASE_URL: "http://127.0.0.2:9/v1" });
          const reply = await generate(h, c.provider, { messages: user("hello") });
          await setCapsuleEnv(envOf, { BASE_URL: c.baseUrl(errors) });
          assert.equal(reply.last.error?.kind, "provider");
          assert.match(
            reply.last.error?.message ?? "",
            /Cannot reach .*127\.0\.0\.2.*net list must name this host/,
          );
        },
      );

      await t.step("the API key never reaches the capsule's log", async () => {
        const log = await h.logText();
        if (Deno.env.get("SHOW_PROVIDER_LOG")) console.log(log);
        assert.ok(log.length > 0);
        assert.ok(!log.includes(KEY));
      });
    } finally {
      await h.close();
      await demo.close();
      await multi.close();
      await errors.close();
      await Deno.remove(copies, { recursive: true });
    }
  });
}

Deno.test("the shipped provider manifests build and allow only their real hosts", async () => {
  for (const c of CASES) {
    const out = await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-provider-build-" });
    try {
      const built = await buildCapsule(
        fileURLToPath(new URL(`../capsules/${c.capsule}/`, import.meta.url)),
        { cacheDir: testBuildCacheDir(), outDir: out },
      );
      assert.equal(built.name, c.capsule);
      const net = /^net = \[([^\]]*)\]/m.exec(built.manifestText)?.[1] ?? "";
      assert.ok(!net.includes("*"), `${c.capsule} allows a wildcard host or port: ${net}`);
      assert.match(
        net,
        c.provider === "openai" ? /"api\.openai\.com:443"/ : /"api\.anthropic\.com:443"/,
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  }
});
