/**
 * The `router` capsule end to end: it is built from `capsules/router/` (cached) and installed
 * with the real `provider-openai-compat` and `provider-anthropic` (loopback copies, as in
 * `capsule_providers_test.ts`) pointed at the scripted fakes of `tests/fakes/`, plus the real
 * orchestrator and prompt builder, into a temporary home; the real daemon (its budget guard
 * included) runs in-process. Each step publishes `llm.v1.request.generate.router` (or a user turn
 * through the orchestrator with `PROVIDER = "router"`) and reads `llm.v1.stream.router`.
 *
 * Proves: every rule picks its route; a 500 falls back to the next route and the caller's stream
 * is one clean answer; an error after output is passed on, not retried; all routes failing is
 * one error naming each; a route with no provider, or one the budget refuses, is skipped; each
 * attempt is its own budget reservation (the failed one refunded) while the router's own route
 * is unmetered by the daemon.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bootDaemon, type Daemon } from "../kernel/daemon/mod.ts";
import type { BusMessage, JsonValue, PublishResult } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import type { SecurityInterceptor } from "../kernel/security/mod.ts";
import { messageJson } from "../sdk/testing/mod.ts";
import { type FakeServer, startAnthropicFake, startOpenAiFake } from "./fakes/mod.ts";
import { setCapsuleEnv } from "./fixtures/capsule_env.ts";
import { type BuiltCapsule, installBuilt } from "./fixtures/install_built.ts";
import { loopbackCopy } from "./fixtures/loopback_capsule.ts";

const KEY = "sk-test-router-0123456789";
const ROOT = new URL("..", import.meta.url);
const WAIT_MS = 30_000;
/** Prices of the test routes (USD per million tokens); `router/*` is deliberately unpriced. */
const PRICES = { openai: [1, 2], anthropic: [3, 4], nobody: [1, 1] } as const;

/** A fake's script: `down` markers answer 500, `busy` 429, `breaks` fail after one chunk of text. */
function script(name: string): Record<string, unknown> {
  return {
    name: `router-${name}`,
    turns: [
      {
        match: { lastMessage: { regex: `\\[(${name}-down|all-down)\\]` } },
        reply: { error: { status: 500, message: `${name} is down` } },
      },
      {
        match: { lastMessage: `[${name}-busy]` },
        reply: { error: { status: 429, retryAfter: 0, message: `${name} is busy` } },
      },
      {
        match: { lastMessage: `[${name}-breaks]` },
        reply: {
          text: [`${name} starts `, "and never ends"],
          streamError: { afterChunks: 1, type: "overloaded_error", message: "Overloaded" },
        },
      },
    ],
    fallback: { text: [`${name} says: `, "{{lastMessage}}"], usage: { outputTokens: 7 } },
  };
}

interface StreamEvent {
  type: string;
  request_id: string;
  session?: string;
  text?: string;
  route?: string;
  model?: string;
  usage?: { input_tokens: number; output_tokens: number; model: string };
  failed_attempts?: { route: string; kind: string; message: string; status?: number }[];
  error?: {
    kind: string;
    message: string;
    attempts?: { route: string; kind: string; message: string; request_id: string }[];
  };
}

interface Routed {
  events: StreamEvent[];
  text: string;
  last: StreamEvent;
  /** Every `llm.v1.stream.<target>` message of the call's attempts (`<rid>~<n>`). */
  attempts: { topic: string; event: StreamEvent }[];
  published: PublishResult;
}

let calls = 0;

class Kernel implements AsyncDisposable {
  readonly root: string;
  readonly daemon: Daemon;
  readonly openai: FakeServer;
  readonly anthropic: FakeServer;

  private constructor(root: string, daemon: Daemon, openai: FakeServer, anthropic: FakeServer) {
    this.root = root;
    this.daemon = daemon;
    this.openai = openai;
    this.anthropic = anthropic;
  }

  static async start(): Promise<Kernel> {
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-router-" });
    const openai = await startOpenAiFake({ script: script("openai"), apiKey: KEY });
    const anthropic = await startAnthropicFake({ script: script("anthropic"), apiKey: KEY });
    try {
      const home = await AstridHome.open(root);
      const copies = join(root, "src");
      const provider = { API_KEY: KEY, RETRY_WAIT_MAX_MS: "0", MAX_RETRIES: "0" };
      const capsules: BuiltCapsule[] = [
        [fileURLToPath(new URL("capsules/router", ROOT)), {
          RULE: "fallback",
          ROUTES: "openai,anthropic",
          ATTEMPT_TIMEOUT_MS: "20000",
        }],
        [await loopbackCopy("provider-openai-compat", copies), {
          ...provider,
          BASE_URL: openai.baseUrl,
          MODEL: "gpt-4.1",
        }],
        [await loopbackCopy("provider-anthropic", copies), {
          ...provider,
          BASE_URL: anthropic.url,
          MODEL: "claude-sonnet-4-5",
        }],
        [fileURLToPath(new URL("capsules/orchestrator", ROOT)), {
          PROVIDER: "router",
          MODEL: "gpt-4.1",
          MAX_STEPS: "2",
          STEP_TIMEOUT_MS: "20000",
        }],
        [fileURLToPath(new URL("capsules/prompt-builder", ROOT)), {}],
      ];
      await installBuilt(home, capsules);
      // Model calls are metered before a provider sees them: price the provider routes only.
      const pricing = Object.entries(PRICES).map(([route, [input, output]]) =>
        `[pricing."${route}/*"]\ninput_per_mtok = ${input}\noutput_per_mtok = ${output}\n`
      );
      await Deno.writeTextFile(
        join(root, "etc", "config.toml"),
        `[security]\nmode = "autonomous"\n\n${pricing.join("\n")}`,
      );
      const daemon = await bootDaemon({
        home: root,
        env: { get: () => undefined },
        echoLog: false,
        idleTimeoutSecs: 3600,
      });
      return new Kernel(root, daemon, openai, anthropic);
    } catch (err) {
      await openai.close();
      await anthropic.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  get security(): SecurityInterceptor {
    return (this.daemon.capsules as unknown as { security: SecurityInterceptor }).security;
  }

  /** Merges `values` into the router's `[env]` values (read on every call). */
  async routerEnv(values: Record<string, string>): Promise<void> {
    await setCapsuleEnv({ home: this.root, capsule: "router" }, values);
  }

  /** Publishes `llm.v1.request.generate.router` and reads its stream to the end. */
  async route(
    text: string,
    options: { model?: string | null; session?: string; system?: string } = {},
  ): Promise<Routed> {
    const requestId = `r-${++calls}`;
    const session = options.session ?? "s-route";
    const bus = this.daemon.bus;
    const mine: BusMessage[] = [];
    const attempts: Routed["attempts"] = [];
    let listener: { close(): void } | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const ended = new Promise<void>((resolve, reject) => {
        listener = bus.listen("llm.v1.stream.*", (msg) => {
          const event = messageJson<StreamEvent>(msg);
          if (event.request_id?.startsWith(`${requestId}~`)) {
            attempts.push({ topic: msg.topic, event });
          }
          if (msg.topic !== "llm.v1.stream.router" || event.request_id !== requestId) return;
          mine.push(msg);
          if (msg.end_of_stream) resolve();
        });
        timer = setTimeout(
          () => reject(new Error(`No end of llm.v1.stream.router for "${text}" in ${WAIT_MS} ms`)),
          WAIT_MS,
        );
      });
      const payload: Record<string, JsonValue> = {
        request_id: requestId,
        session,
        system: options.system ?? "",
        messages: [{ role: "user", content: text }],
        max_tokens: 256,
      };
      const model = options.model === undefined ? "gpt-4.1" : options.model;
      if (model !== null) payload.model = model;
      const published = await bus.publish("llm.v1.request.generate.router", payload, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
        request_id: requestId,
      });
      if (published.outcome === "denied") {
        return { events: [], text: "", last: { type: "", request_id: "" }, attempts, published };
      }
      await ended;
      const events = mine.map((m) => messageJson<StreamEvent>(m));
      for (const [i, m] of mine.entries()) {
        assert.equal(m.request_id, requestId, "the envelope carries the caller's request_id");
        assert.equal(events[i].session, session, "the session is copied");
      }
      assert.equal(mine.filter((m) => m.end_of_stream).length, 1, "one message ends the stream");
      assert.ok(mine[mine.length - 1].end_of_stream, "the last message ends the stream");
      return {
        events,
        text: events.filter((e) => e.type === "text_delta").map((e) => e.text).join(""),
        last: events[events.length - 1],
        attempts,
        published,
      };
    } finally {
      listener?.close();
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /** One user turn through the orchestrator (`PROVIDER = "router"`) until `agent.v1.response`. */
  async turn(text: string, session: string): Promise<{
    deltas: string[];
    response: Record<string, JsonValue>;
  }> {
    const requestId = `r-turn-${++calls}`;
    const deltas: string[] = [];
    const bus = this.daemon.bus;
    let listener: { close(): void } | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const done = new Promise<Record<string, JsonValue>>((resolve, reject) => {
        listener = bus.listen("agent.v1.*", (msg) => {
          const p = messageJson<Record<string, JsonValue>>(msg);
          if (p.request_id !== requestId) return;
          if (msg.topic === "agent.v1.stream.delta") deltas.push(p.text as string);
          if (msg.topic === "agent.v1.response") resolve(p);
        });
        timer = setTimeout(
          () => reject(new Error(`No agent.v1.response for "${text}" within ${WAIT_MS} ms`)),
          WAIT_MS,
        );
      });
      const published = bus.publish("user.v1.prompt", { text, request_id: requestId, session }, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
        request_id: requestId,
      });
      const response = await done;
      await published;
      return { deltas, response };
    } finally {
      listener?.close();
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.daemon.shutdown("test finished");
    } finally {
      await this.openai.close();
      await this.anthropic.close();
      await Deno.remove(this.root, { recursive: true }).catch(() => {});
    }
  }
}

/** The model each fake was asked for, in order, since `from` requests. */
function models(fake: FakeServer, from: number): string[] {
  return fake.requests.slice(from).map((r) => (r.body as { model: string }).model);
}

/** Yields to the event loop (store writes) until `done()` holds. */
async function settle(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000 && !(await done()); i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

Deno.test("router capsule routes model calls by rule and falls back across real providers", async (t) => {
  await using k = await Kernel.start();

  await t.step("generate() with rule fallback takes the first of ROUTES", async () => {
    const r = await k.route("hello");
    assert.equal(r.text, "openai says: hello");
    assert.equal(r.last.type, "final");
    assert.equal(r.last.route, "openai");
    assert.equal(r.last.failed_attempts, undefined);
    assert.deepEqual([...new Set(r.attempts.map((a) => a.topic))], ["llm.v1.stream.openai"]);
    assert.ok(r.attempts.every((a) => a.event.request_id.endsWith("~1")));

    await k.routerEnv({ ROUTES: "anthropic,openai" });
    const other = await k.route("hello again");
    assert.equal(other.text, "anthropic says: hello again");
    assert.equal(other.last.route, "anthropic");
  });

  await t.step(
    "generate() with rule model picks the route of the first matching glob",
    async () => {
      await k.routerEnv({
        RULE: "model",
        ROUTES: "anthropic,openai",
        MODEL_ROUTES: "claude-*=anthropic,gpt-*=openai,*=openai",
        ROUTE_MODELS: "",
      });
      assert.equal((await k.route("a", { model: "gpt-4.1" })).last.route, "openai");
      assert.equal((await k.route("b", { model: "claude-sonnet-4-5" })).last.route, "anthropic");
      assert.equal((await k.route("c", { model: "llama-3" })).last.route, "openai");
    },
  );

  await t.step("generate() with rule size compares chars / 4 with SMALL_MAX_TOKENS", async () => {
    await k.routerEnv({
      RULE: "size",
      ROUTES: "anthropic,openai",
      SMALL_MAX_TOKENS: "100",
      SMALL_ROUTE: "openai",
      LARGE_ROUTE: "anthropic",
    });
    // system + message content = 400 characters = 100 tokens: small; one more: large.
    const small = await k.route("x".repeat(300), { system: "s".repeat(100) });
    assert.equal(small.last.route, "openai");
    const large = await k.route("x".repeat(301), { system: "s".repeat(100) });
    assert.equal(large.last.route, "anthropic");
  });

  await t.step("generate() with rule cost tries the cheapest route first", async () => {
    await k.routerEnv({ RULE: "cost", ROUTES: "anthropic,openai" });
    await k.routerEnv({ ROUTE_COSTS: "anthropic=3.0,openai=0.15" });
    assert.equal((await k.route("cheap")).last.route, "openai");
    await k.routerEnv({ ROUTE_COSTS: "anthropic=0.1,openai=0.15" });
    assert.equal((await k.route("cheap")).last.route, "anthropic");
    await k.routerEnv({ ROUTE_COSTS: "openai=0.15" });
    assert.equal((await k.route("cheap")).last.route, "openai", "unpriced routes go last");
  });

  await t.step("generate() falls back on a 500 and relays one clean answer", async () => {
    await k.routerEnv({ RULE: "fallback", ROUTES: "openai,anthropic" });
    const before = k.openai.requests.length;
    const r = await k.route("[openai-down] hi");
    assert.equal(k.openai.requests.length - before, 2, "the provider retried its 500 once");
    assert.equal(r.text, "anthropic says: [openai-down] hi");
    assert.deepEqual(r.events.map((e) => e.type), ["text_delta", "text_delta", "final"]);
    assert.equal(r.last.route, "anthropic");
    assert.equal(r.last.failed_attempts?.length, 1);
    assert.equal(r.last.failed_attempts?.[0].route, "openai");
    assert.equal(r.last.failed_attempts?.[0].status, 500);
    // The raw attempts: openai's error under <rid>~1, anthropic's answer under <rid>~2.
    const openaiEvents = r.attempts.filter((a) => a.topic === "llm.v1.stream.openai");
    assert.deepEqual(openaiEvents.map((a) => a.event.type), ["error"]);
    assert.ok(openaiEvents[0].event.request_id.endsWith("~1"));
    assert.ok(
      r.attempts.filter((a) => a.topic === "llm.v1.stream.anthropic")
        .every((a) => a.event.request_id.endsWith("~2")),
    );
  });

  await t.step("generate() falls back on a 429 left after the provider's retries", async () => {
    const r = await k.route("[openai-busy] hi");
    assert.equal(r.text, "anthropic says: [openai-busy] hi");
    assert.deepEqual(
      r.last.failed_attempts?.map((a) => [a.route, a.kind, a.status]),
      [["openai", "provider_rate_limited", 429]],
    );
  });

  await t.step(
    "generate() replaces the model by ROUTE_MODELS on a route it does not name",
    async () => {
      await k.routerEnv({
        MODEL_ROUTES: "gpt-*=openai",
        ROUTE_MODELS: "openai=gpt-4.1-mini,anthropic=claude-haiku-4-5",
      });
      const o = k.openai.requests.length;
      const a = k.anthropic.requests.length;
      const r = await k.route("[openai-down] models", { model: "gpt-4o" });
      assert.equal(r.last.route, "anthropic");
      assert.deepEqual(models(k.openai, o), ["gpt-4o", "gpt-4o"], "its own route keeps it");
      assert.deepEqual(models(k.anthropic, a), ["claude-haiku-4-5"]);
      assert.equal(r.last.model, "claude-haiku-4-5");
      await k.routerEnv({ MODEL_ROUTES: "", ROUTE_MODELS: "" });
    },
  );

  await t.step("generate() sends ROUTE_MODELS' model when the request names none", async () => {
    await k.routerEnv({ ROUTE_MODELS: "openai=gpt-4.1-mini,anthropic=claude-haiku-4-5" });
    const o = k.openai.requests.length;
    const r = await k.route("no model", { model: null });
    assert.equal(r.last.route, "openai");
    assert.deepEqual(models(k.openai, o), ["gpt-4.1-mini"]);
    await k.routerEnv({ ROUTE_MODELS: "" });
  });

  await t.step("generate() keeps concurrent calls of one principal apart", async () => {
    const words = ["alpha", "bravo", "charlie", "delta"];
    const results = await Promise.all(
      words.map((w, i) => k.route(i % 2 === 0 ? `[openai-down] ${w}` : w)),
    );
    for (const [i, r] of results.entries()) {
      const expected = i % 2 === 0
        ? `anthropic says: [openai-down] ${words[i]}`
        : `openai says: ${words[i]}`;
      assert.equal(r.text, expected);
      assert.equal(r.last.route, i % 2 === 0 ? "anthropic" : "openai");
    }
  });

  await t.step(
    "generate() passes an error after output on without trying another route",
    async () => {
      const before = k.anthropic.requests.length;
      const r = await k.route("[openai-breaks]");
      assert.equal(r.text, "openai starts ");
      assert.equal(r.last.type, "error");
      assert.equal(r.last.route, "openai");
      assert.equal(r.last.error?.kind, "provider");
      assert.equal(k.anthropic.requests.length, before, "no second route was asked");
    },
  );

  await t.step("generate() ends with one error naming every route when all fail", async () => {
    const r = await k.route("[all-down]");
    assert.deepEqual(r.events.map((e) => e.type), ["error"]);
    assert.equal(r.last.error?.kind, "provider");
    assert.match(
      r.last.error?.message ?? "",
      /^All 2 routes failed: openai \(provider\): .*HTTP 500.*; anthropic \(provider\): .*HTTP 500/,
    );
    assert.deepEqual(r.last.error?.attempts?.map((a) => [a.route, a.request_id]), [
      ["openai", `${r.last.request_id}~1`],
      ["anthropic", `${r.last.request_id}~2`],
    ]);
  });

  await t.step("generate() skips a route with no provider and one the budget refuses", async () => {
    await k.routerEnv({ ROUTES: "nobody,unpriced,anthropic" });
    const r = await k.route("anyone there?");
    assert.equal(r.text, "anthropic says: anyone there?");
    const kinds = r.last.failed_attempts?.map((a) => [a.route, a.kind]);
    assert.deepEqual(kinds, [["nobody", "no_answer"], ["unpriced", "denied"]]);
    assert.match(r.last.failed_attempts?.[0].message ?? "", /No provider serves route nobody/);
    assert.match(r.last.failed_attempts?.[1].message ?? "", /no price/);

    await k.routerEnv({ ROUTES: "unpriced" });
    const refused = await k.route("refused");
    // The router is detached: the caller's publish was delivered long before the refusal, so
    // the refusal ends the stream, with the kind a Deny would have given the caller.
    assert.equal(refused.published.outcome, "delivered");
    assert.deepEqual(refused.events.map((e) => e.type), ["error"]);
    assert.equal(refused.last.error?.kind, "budget_exhausted");
    assert.match(
      refused.last.error?.message ?? "",
      /^Every route refused the model call: unpriced/,
    );
    assert.deepEqual(refused.last.error?.attempts?.map((a) => a.route), ["unpriced"]);
    await k.routerEnv({ ROUTES: "openai,anthropic" });
  });

  await t.step(
    "the orchestrator with PROVIDER router sees one answer after a fallback",
    async () => {
      const turn = await k.turn("[openai-down] through the agent", "s-turn");
      assert.equal(turn.response.error, undefined);
      assert.equal(turn.response.stop_reason, "end_turn");
      assert.deepEqual(turn.deltas, ["anthropic says: ", "[openai-down] through the agent"]);
      assert.equal(turn.response.text, turn.deltas.join(""));

      const failed = await k.turn("[all-down] through the agent", "s-turn-failed");
      assert.equal(failed.response.stop_reason, "error");
      const error = failed.response.error as { kind: string; message: string };
      assert.equal(error.kind, "provider");
      assert.match(error.message, /^All 2 routes failed: openai .*; anthropic /);
    },
  );

  await t.step("each attempt is its own reservation; the router's route is unmetered", async () => {
    const session = "s-budget";
    // A model of no default price, so anthropic/* ($3 / $4) prices it.
    await k.routerEnv({ MODEL_ROUTES: "gpt-*=openai", ROUTE_MODELS: "anthropic=claude-test" });
    const scope = { principal: principalId("default"), session, workspace: "none" };
    const r = await k.route("[openai-down] spend", { session });
    assert.equal(r.last.route, "anthropic");
    const usage = r.last.usage!;
    // Only the answered attempt is charged: anthropic's usage at $3 / $4 per million tokens.
    const expected = (usage.input_tokens * 3 + usage.output_tokens * 4) / 1e6;
    await settle(async () => (await k.security.budget.usage(scope)).sessionHeldUsd === 0);
    const spent = await k.security.budget.usage(scope);
    assert.equal(spent.sessionHeldUsd, 0, "the failed attempt's reservation was refunded");
    assert.ok(Math.abs(spent.sessionSpentUsd - expected) < 1e-9, `spent ${spent.sessionSpentUsd}`);
    const entries = (await k.daemon.audit.list(principalId("default"), { limit: 100 }))
      .filter((e) => e.action === "llm.generate" && e.session === session);
    assert.deepEqual(
      entries.map((e) => [e.resource, e.decision]),
      [["llm:openai/gpt-4.1", "allowed"], ["llm:anthropic/claude-test", "allowed"]],
      "one reservation per attempt, none for the router's own route (it has no price)",
    );
  });

  await t.step("describe() answers with the router's rule, routes and models", async () => {
    await k.routerEnv({ ROUTE_MODELS: "openai=gpt-4.1,anthropic=claude-sonnet-4-5" });
    const bus = k.daemon.bus;
    let listener: { close(): void } | undefined;
    const got = new Promise<Record<string, JsonValue>>((resolve) => {
      listener = bus.listen("llm.v1.response.describe.router", (m) => resolve(messageJson(m)));
    });
    try {
      await bus.publish("llm.v1.request.describe", { request_id: "d-1" }, {
        ctx: { principal: principalId("default"), source: { kind: "kernel", name: "test" } },
        request_id: "d-1",
      });
      const reply = await got;
      assert.deepEqual(reply, {
        request_id: "d-1",
        provider: "router",
        capsule: "router",
        rule: "fallback",
        routes: ["openai", "anthropic"],
        models: [
          { id: "gpt-4.1", route: "openai", tools: true },
          { id: "claude-sonnet-4-5", route: "anthropic", tools: true },
        ],
      });
    } finally {
      listener?.close();
    }
  });
});
