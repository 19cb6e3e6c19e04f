/**
 * The defect "a provider bound as an interceptor blocks the publish", end to end: the OpenAI fake
 * streams five text deltas 300 ms apart, and the real orchestrator's `agent.v1.stream.delta`
 * messages must reach a listener spread over that time — the first well before the last and
 * before the model call ended — not all at once at the end of the call. Run twice with the real
 * daemon in-process (its budget guard included): orchestrator → `provider-openai-compat`
 * directly, and orchestrator → `cache` → `router` → `provider-openai-compat` (astralis' chain),
 * where the cache misses (each prompt is new) and records the stream without holding the call.
 *
 * Timings are asserted with wide margins (arrival order and spread, never exact times).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootDaemon, type Daemon } from "../kernel/daemon/mod.ts";
import type { JsonValue } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { messageJson } from "../sdk/testing/mod.ts";
import { type FakeServer, startOpenAiFake } from "./fakes/mod.ts";
import { type BuiltCapsule, installBuilt } from "./fixtures/install_built.ts";
import { loopbackCopy } from "./fixtures/loopback_capsule.ts";

const KEY = "sk-test-streaming-0123456789";
const ROOT = new URL("..", import.meta.url);
/** The fake's pause before each chunk, ms. */
const CHUNK_DELAY_MS = 300;
const CHUNKS = ["one ", "two ", "three ", "four ", "five"];
const WAIT_MS = 30_000;

/** A daemon with the orchestrator on `openai` directly, or behind the cache and the router. */
class Setup implements AsyncDisposable {
  private constructor(
    readonly root: string,
    readonly daemon: Daemon,
    readonly fake: FakeServer,
  ) {}

  static async start(chain: "direct" | "cache+router"): Promise<Setup> {
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-streaming-" });
    const fake = await startOpenAiFake({
      apiKey: KEY,
      script: {
        name: "paced",
        turns: [],
        fallback: { text: CHUNKS, delayMs: CHUNK_DELAY_MS, usage: { outputTokens: 5 } },
      },
    });
    try {
      const home = await AstridHome.open(root);
      const capsules: BuiltCapsule[] = [
        [await loopbackCopy("provider-openai-compat", join(root, "src")), {
          API_KEY: KEY,
          BASE_URL: fake.baseUrl,
          MODEL: "gpt-4.1",
          MAX_RETRIES: "0",
          RETRY_WAIT_MAX_MS: "0",
        }],
        [fileURLToPath(new URL("capsules/orchestrator", ROOT)), {
          PROVIDER: chain === "direct" ? "openai" : "router",
          MODEL: "gpt-4.1",
          MAX_STEPS: "2",
          STEP_TIMEOUT_MS: "20000",
        }],
        [fileURLToPath(new URL("capsules/prompt-builder", ROOT)), {}],
      ];
      if (chain === "cache+router") {
        capsules.push(
          [fileURLToPath(new URL("capsules/router", ROOT)), {
            RULE: "fallback",
            ROUTES: "openai",
            ROUTE_MODELS: "openai=gpt-4.1",
            ATTEMPT_TIMEOUT_MS: "20000",
          }],
          [fileURLToPath(new URL("capsules/cache", ROOT)), {}],
        );
      }
      await installBuilt(home, capsules);
      await Deno.writeTextFile(
        join(root, "etc", "config.toml"),
        `[security]\nmode = "autonomous"\n\n[pricing."openai/*"]\ninput_per_mtok = 1\noutput_per_mtok = 2\n`,
      );
      const daemon = await bootDaemon({
        home: root,
        env: { get: () => undefined },
        echoLog: false,
        idleTimeoutSecs: 3600,
      });
      return new Setup(root, daemon, fake);
    } catch (err) {
      await fake.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * One user turn; returns when each delta arrived (ms since the prompt was published), when the
   * model's stream (`llm.v1.stream.<route>`) ended, and the response.
   */
  async turn(text: string, requestId: string): Promise<{
    deltas: { text: string; at: number }[];
    streamEndedAt: number;
    response: Record<string, JsonValue>;
  }> {
    const bus = this.daemon.bus;
    const deltas: { text: string; at: number }[] = [];
    let streamEndedAt = -1;
    const started = performance.now();
    const listeners: { close(): void }[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const done = new Promise<Record<string, JsonValue>>((resolve, reject) => {
        listeners.push(bus.listen("agent.v1.*", (msg) => {
          const p = messageJson<Record<string, JsonValue>>(msg);
          if (p.request_id !== requestId) return;
          if (msg.topic === "agent.v1.stream.delta") {
            deltas.push({ text: p.text as string, at: performance.now() - started });
          }
          if (msg.topic === "agent.v1.response") resolve(p);
        }));
        // The orchestrator's own model call (`<requestId>.1`) on whatever route it uses.
        listeners.push(bus.listen("llm.v1.stream.*", (msg) => {
          if (msg.request_id === `${requestId}.1` && msg.end_of_stream) {
            streamEndedAt = performance.now() - started;
          }
        }));
        timer = setTimeout(
          () => reject(new Error(`No agent.v1.response for "${text}" within ${WAIT_MS} ms`)),
          WAIT_MS,
        );
      });
      const published = bus.publish("user.v1.prompt", {
        text,
        request_id: requestId,
        session: requestId,
      }, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
        request_id: requestId,
      });
      const response = await done;
      await published;
      return { deltas, streamEndedAt, response };
    } finally {
      for (const l of listeners) l.close();
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.daemon.shutdown("test finished");
    } finally {
      await this.fake.close();
      await Deno.remove(this.root, { recursive: true }).catch(() => {});
    }
  }
}

/** The acceptance: deltas arrive while the model streams, not in one burst at its end. */
function assertStreamed(
  turn: Awaited<ReturnType<Setup["turn"]>>,
): void {
  assert.equal(turn.response.error, undefined, JSON.stringify(turn.response.error));
  assert.equal(turn.response.text, CHUNKS.join(""));
  const texts = turn.deltas.map((d) => d.text).filter((t) => t.trim() !== "");
  assert.deepEqual(texts, CHUNKS, "one delta per chunk, in order");
  const chunks = turn.deltas.filter((d) => d.text.trim() !== "");
  const first = chunks[0].at;
  const last = chunks[chunks.length - 1].at;
  // Five chunks 300 ms apart span ~1.2 s from first to last; in one burst they span ~0.
  assert.ok(
    last - first >= 2 * CHUNK_DELAY_MS,
    `deltas spread over ${Math.round(last - first)} ms, expected at least ${2 * CHUNK_DELAY_MS}`,
  );
  for (let i = 1; i < chunks.length; i++) {
    assert.ok(chunks[i].at >= chunks[i - 1].at, "arrival order is the stream's order");
  }
  assert.ok(turn.streamEndedAt > 0, "the model call's stream ended");
  assert.ok(
    turn.streamEndedAt - first >= 2 * CHUNK_DELAY_MS,
    `the first delta came ${Math.round(turn.streamEndedAt - first)} ms before the model ` +
      "call ended: expected well before it",
  );
}

Deno.test("orchestrator deltas stream while the provider streams, directly and via cache and router", async (t) => {
  await t.step("orchestrator → provider-openai-compat", async () => {
    await using s = await Setup.start("direct");
    const turn = await s.turn("count to five", "r-stream-direct");
    assertStreamed(turn);
    assert.equal(s.fake.count("/v1/chat/completions"), 1);
  });

  await t.step("orchestrator → cache → router → provider-openai-compat", async () => {
    await using s = await Setup.start("cache+router");
    const turn = await s.turn("count to five, through the router", "r-stream-chain");
    assertStreamed(turn);
    assert.equal(s.fake.count("/v1/chat/completions"), 1, "one attempt, one provider call");
    // The cache recorded the miss without holding the call: the same turn again is a hit.
    assert.ok(await waitForStore(s), "the cache stored the streamed answer");
    const again = await s.turn("count to five, through the router", "r-stream-again");
    assert.equal(again.response.text, CHUNKS.join(""));
    assert.equal(s.fake.count("/v1/chat/completions"), 1, "answered by the cache");
  });
});

/** Polls the cache's counters (up to 10 s) until it stored an entry; true when it did. */
async function waitForStore(s: Setup): Promise<boolean> {
  const bus = s.daemon.bus;
  const deadline = Date.now() + 10_000;
  for (let n = 0; Date.now() < deadline; n++) {
    const requestId = `stats-${n}`;
    const reply = await new Promise<Record<string, JsonValue> | undefined>((resolve) => {
      const timer = setTimeout(() => {
        listener.close();
        resolve(undefined);
      }, 2_000);
      const listener = bus.listen("cache.v1.response.stats", (m) => {
        if (m.request_id !== requestId) return;
        clearTimeout(timer);
        listener.close();
        resolve(messageJson(m));
      });
      bus.publish("cache.v1.request.stats", { request_id: requestId }, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
        request_id: requestId,
      }).catch(() => {});
    });
    if (reply !== undefined && (reply.stores as number) >= 1) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
