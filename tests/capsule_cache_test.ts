/**
 * The `cache` capsule end to end: built from `capsules/cache/` (cached), installed with the
 * stand-in provider (`tests/fixtures/stand_in_provider/`, route `stand-in`) into a temporary home,
 * and run by the real kernel in-process with its budget interceptor priced for the stand-in model.
 * Each step publishes `llm.v1.request.generate.stand-in` as an orchestrator would and reads the
 * stream back from `llm.v1.stream.stand-in`; the source of each stream message tells whether the
 * provider answered (`stand-in-provider`) or the cache did (`cache`). Further tests run the real
 * `provider-openai-compat` against the OpenAI fake (counting the HTTP requests the fake saw), the
 * real orchestrator and prompt builder (turns are the same with and without a hit), and more
 * concurrent misses than the capsule has instances (each filled and stored).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { BusMessage, JsonValue, PublishResult } from "../kernel/events/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import type { SecurityInterceptor } from "../kernel/security/mod.ts";
import {
  type CapsuleHarness,
  messageJson,
  testBuildCacheDir,
  testCapsule,
} from "../sdk/testing/mod.ts";
import { startOpenAiFake } from "./fakes/mod.ts";
import { setCapsuleEnv } from "./fixtures/capsule_env.ts";
import { loopbackCopy } from "./fixtures/loopback_capsule.ts";
import { stageAsCapsule } from "./fixtures/stage_as_capsule.ts";

const CACHE_DIR = fileURLToPath(new URL("../capsules/cache/", import.meta.url));
const STAND_IN = fileURLToPath(new URL("./fixtures/stand_in_provider/", import.meta.url));
const ROUTE = "stand-in";
/**
 * The cache's `PROVIDERS` in these tests: the stand-in route's provider, and `nobody` (a route no
 * installed capsule serves) answered by hand as `nobody-provider`.
 */
const PROVIDERS = "stand-in=stand-in-provider,nobody=nobody-provider";
const PRICING = [
  `[pricing."${ROUTE}/m1"]`,
  "input_per_mtok = 1.0",
  "output_per_mtok = 2.0",
  `[pricing."nobody/m1"]`,
  "input_per_mtok = 1.0",
  "output_per_mtok = 2.0",
  `[pricing."unnamed/m1"]`,
  "input_per_mtok = 1.0",
  "output_per_mtok = 2.0",
  `[pricing."openai/fake-model"]`,
  "input_per_mtok = 1.0",
  "output_per_mtok = 2.0",
  "",
].join("\n");

type Json = Record<string, JsonValue>;

interface Call {
  requestId: string;
  published: PublishResult;
  messages: BusMessage[];
  events: Json[];
  /** The stream's sources: `stand-in-provider`, `cache`, … */
  sources: Set<string>;
  last: Json;
  text: string;
  /** The fill's report (`cache.v1.response.fill`) of a miss, once it stored or gave up. */
  fill?: Json;
}

/** The cache capsule beside the stand-in provider (staged in a new `/tmp/<prefix>…`). */
async function cacheWithStandIn(prefix: string): Promise<{ h: CapsuleHarness; stage: string }> {
  const stage = await Deno.makeTempDir({ dir: "/tmp", prefix });
  const h = await testCapsule(CACHE_DIR, {
    with: [await stageAsCapsule(STAND_IN, stage)],
    mode: "autonomous",
    configToml: PRICING,
    build: { cacheDir: testBuildCacheDir() },
    env: { PROVIDERS },
  });
  return { h, stage };
}

let counter = 0;

/**
 * Resolves with the `cache.v1.response.fill` report of `requestId` (the detached fill ended),
 * or rejects after `timeoutMs`; `close()` stops listening.
 */
function fillReport(
  h: CapsuleHarness,
  requestId: string,
  timeoutMs = 20_000,
): { done: Promise<Json>; close(): void } {
  let listener: { close(): void } | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const close = () => {
    listener?.close();
    if (timer !== undefined) clearTimeout(timer);
  };
  const done = new Promise<Json>((resolve, reject) => {
    listener = h.bus.listen("cache.v1.response.fill", (m) => {
      if (m.request_id === requestId) resolve(messageJson<Json>(m));
    });
    timer = setTimeout(
      () => reject(new Error(`No cache.v1.response.fill for ${requestId} in ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  done.then(close, close);
  return { done, close };
}

/**
 * Publishes a model call on `route` and collects its stream until `end_of_stream`; a miss (the
 * publish delivered, no `cache` field) also waits for its fill's report, so the next call sees
 * what it stored (`fill: false` when no fill runs, e.g. with `ENABLED = false`).
 */
async function generate(
  h: CapsuleHarness,
  payload: Json,
  options: { principal?: string; route?: string; session?: string; fill?: boolean } = {},
): Promise<Call> {
  const route = options.route ?? ROUTE;
  const requestId = `r-cache-${++counter}`;
  const session = options.session ?? "s-1";
  let published: PublishResult | undefined;
  const report = fillReport(h, requestId);
  report.done.catch(() => {});
  const all = await h.collect(
    `llm.v1.stream.${route}`,
    async () => {
      published = await h.publish(`llm.v1.request.generate.${route}`, {
        request_id: requestId,
        session,
        model: "m1",
        max_tokens: 100,
        ...payload,
      }, { requestId, principal: options.principal });
    },
    {
      until: (m) => m.end_of_stream === true && m.request_id === requestId,
      timeoutMs: 20_000,
    },
  );
  const messages = all.filter((m) => m.request_id === requestId);
  const events = messages.map((m) => messageJson<Json>(m));
  for (const e of events) {
    assert.equal(e.request_id, requestId, "every message carries the call's request_id");
    assert.equal(e.session, session, "every message copies the session");
  }
  for (const m of messages) assert.equal(m.principal, options.principal ?? "default");
  assert.equal(messages.filter((m) => m.end_of_stream).length, 1, "one message ends the stream");
  const filling = options.fill ??
    (published!.outcome === "delivered" && payload.cache === undefined);
  let fill: Json | undefined;
  if (filling) fill = await report.done;
  else report.close();
  return {
    requestId,
    fill,
    published: published!,
    messages,
    events,
    sources: new Set(messages.map((m) => m.source.name)),
    last: events[events.length - 1],
    text: events.filter((e) => e.type === "text_delta").map((e) => e.text).join(""),
  };
}

/**
 * Publishes a model call that gets no stream (a Deny); returns the publish's result and the
 * fill's report if one came within `waitMs` (null: no fill ran).
 */
async function refused(
  h: CapsuleHarness,
  payload: Json,
  waitMs: number,
): Promise<{ requestId: string; published: PublishResult; fill: Json | null }> {
  const requestId = `r-cache-${++counter}`;
  const report = fillReport(h, requestId, waitMs);
  const published = await h.publish(`llm.v1.request.generate.${ROUTE}`, {
    request_id: requestId,
    session: "s-1",
    model: "m1",
    max_tokens: 100,
    ...payload,
  }, { requestId });
  return { requestId, published, fill: await report.done.catch(() => null) };
}

/** Asks the cache for the principal's counters. */
async function stats(h: CapsuleHarness, principal = "default"): Promise<Json> {
  const requestId = `stats-${++counter}`;
  const msg = await h.waitFor(
    "cache.v1.response.stats",
    () => h.publish("cache.v1.request.stats", { request_id: requestId }, { requestId, principal }),
    { accept: (m) => m.request_id === requestId && m.principal === principal },
  );
  const value = messageJson<Json>(msg);
  assert.equal(value.request_id, requestId);
  return value;
}

/** The counters only. */
async function counters(h: CapsuleHarness, principal = "default"): Promise<Json> {
  const s = await stats(h, principal);
  return {
    hits: s.hits,
    misses: s.misses,
    stores: s.stores,
    expired: s.expired,
    skipped: s.skipped,
  };
}

function canonical(v: JsonValue): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Readonly<Record<string, JsonValue>>;
    const keys = Object.keys(o).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** The KV key the capsule documents: `e/` + SHA-256 of the route and the normalised request. */
function entryKey(route: string, payload: Json): string {
  const rest: Json = {};
  for (const [k, v] of Object.entries(payload)) {
    if (!["request_id", "session", "workspace_id", "cache"].includes(k)) rest[k] = v;
  }
  return "e/" + createHash("sha256").update(`${route}\n${canonical(rest)}`).digest("hex");
}

const ns = (principal: string) => `${principal}:capsule:cache`;
const user = (content: string) => [{ role: "user", content }];

function security(h: CapsuleHarness): SecurityInterceptor {
  return (h.daemon.capsules as unknown as { security: SecurityInterceptor }).security;
}

async function llmAudits(h: CapsuleHarness): Promise<number> {
  const entries = await h.daemon.audit.list(principalId("default"), { limit: 10_000 });
  return entries.filter((e) => e.action === "llm.generate").length;
}

Deno.test("cache capsule answers repeated model calls from its per-principal cache", async (t) => {
  const { h, stage } = await cacheWithStandIn("astrid-cache-test-");
  try {
    await h.daemon.home.ensurePrincipal(principalId("bob"));
    const question = { system: "Be brief.", messages: user("hello there") };
    let first: Call | undefined;

    await t.step("a first call misses: the provider answers and the stream is stored", async () => {
      first = await generate(h, question);
      assert.deepEqual([...first.sources], ["stand-in-provider"]);
      assert.equal(first.text, "echo: hello there");
      assert.equal(first.last.type, "final");
      assert.equal(first.published.outcome, "delivered", "a miss goes on to the provider");
      assert.deepEqual(first.fill, {
        session: "s-1",
        request_id: first.requestId,
        route: ROUTE,
        state: "complete",
        stored: true,
        messages: 3,
        rejected: 0,
      });
      const key = entryKey(ROUTE, { model: "m1", max_tokens: 100, ...question });
      assert.ok(
        (await h.daemon.store.get(ns("default"), key)) !== null,
        `entry ${key} is stored under the documented key`,
      );
      assert.deepEqual(await counters(h), {
        hits: 0,
        misses: 1,
        stores: 1,
        expired: 0,
        skipped: 0,
      });
    });

    await t.step(
      "the same call again is answered by the cache: same stream, new request_id, no provider",
      async () => {
        const usage = await security(h).budget.usage({
          principal: "default",
          session: "s-1",
          workspace: "none",
        });
        const audits = await llmAudits(h);
        const again = await generate(h, question);
        assert.deepEqual([...again.sources], ["cache"], "the provider was not reached");
        assert.equal(again.text, first!.text);
        assert.deepEqual(
          again.events.slice(0, -1).map((e) => ({ ...e, request_id: "x" })),
          first!.events.slice(0, -1).map((e) => ({ ...e, request_id: "x" })),
        );
        assert.equal(again.last.type, "final");
        assert.equal(again.last.cached, true);
        assert.equal(again.last.stop_reason, "end_turn");
        assert.equal(typeof again.last.cached_at, "number");
        assert.deepEqual(again.last.usage, {
          input_tokens: 0,
          output_tokens: 0,
          cost_usd: 0,
          model: "stand-in-model",
          cached_input_tokens: 10,
          cached_output_tokens: 5,
        });
        assert.equal(again.messages[again.messages.length - 1].end_of_stream, true);
        assert.equal(again.published.outcome, "final");
        if (again.published.outcome === "final") {
          assert.equal((messageJson(again.published.reply!) as Json).cache, "hit");
        }
        // Nothing was reserved, charged or audited for the hit.
        assert.equal(await llmAudits(h), audits, "the budget guard never saw the hit");
        assert.deepEqual(
          await security(h).budget.usage({
            principal: "default",
            session: "s-1",
            workspace: "none",
          }),
          usage,
        );
        assert.equal((await counters(h)).hits, 1);
      },
    );

    await t.step("the ids and the key order do not change the key", async () => {
      const reordered = await generate(h, {
        messages: [{ content: "hello there", role: "user" }],
        system: "Be brief.",
        workspace_id: "w-other",
      }, { session: "s-2" });
      assert.deepEqual([...reordered.sources], ["cache"]);
      assert.equal(reordered.events[0].session, "s-2", "the new call's session is copied");
      assert.equal(reordered.events[0].workspace_id, "w-other");
    });

    await t.step("a call that differs in any answer-changing field misses", async () => {
      const changes: Json[] = [
        { messages: user("hello again") },
        { system: "Be verbose." },
        { max_tokens: 101 },
        { temperature: 0.5 },
        { tools: [{ name: "t", description: "d", input_schema: { type: "object" } }] },
      ];
      for (const change of changes) {
        const call = await generate(h, { ...question, ...change });
        assert.deepEqual([...call.sources], ["stand-in-provider"], JSON.stringify(change));
      }
    });

    await t.step(
      "the key is SHA-256 of the normalised request at every padding length, UTF-8 included",
      async () => {
        // Key texts of 64 consecutive byte lengths cover every SHA-256 padding case.
        for (let n = 0; n < 64; n++) {
          const payload = { messages: user(`${"x".repeat(n)} é 😀 \u0001 "q"`) };
          const call = await generate(h, payload);
          assert.deepEqual([...call.sources], ["stand-in-provider"]);
          const key = entryKey(ROUTE, { model: "m1", max_tokens: 100, ...payload });
          assert.ok((await h.daemon.store.get(ns("default"), key)) !== null, `length ${n}`);
        }
      },
    );

    await t.step("an expired entry is dropped and the call goes to the provider", async () => {
      const key = entryKey(ROUTE, { model: "m1", max_tokens: 100, ...question });
      const bytes = await h.daemon.store.get(ns("default"), key);
      const entry = JSON.parse(new TextDecoder().decode(bytes!));
      entry.stored_at -= 3600 * 1000; // TTL_SECONDS is 3600: make the entry an hour old
      await h.daemon.store.set(
        ns("default"),
        key,
        new TextEncoder().encode(JSON.stringify(entry)),
      );
      const before = await counters(h);
      const call = await generate(h, question);
      assert.deepEqual([...call.sources], ["stand-in-provider"]);
      const after = await counters(h);
      assert.equal(after.expired, (before.expired as number) + 1);
      assert.equal(after.stores, (before.stores as number) + 1, "the fresh answer is stored");
      assert.deepEqual([...(await generate(h, question)).sources], ["cache"]);
    });

    await t.step("a shorter TTL_SECONDS applies to entries already stored", async () => {
      const key = entryKey(ROUTE, { model: "m1", max_tokens: 100, ...question });
      const entry = JSON.parse(
        new TextDecoder().decode((await h.daemon.store.get(ns("default"), key))!),
      );
      entry.stored_at -= 2000;
      await h.daemon.store.set(
        ns("default"),
        key,
        new TextEncoder().encode(JSON.stringify(entry)),
      );
      await setCapsuleEnv({ home: h.home, capsule: "cache" }, { TTL_SECONDS: "1" });
      try {
        assert.deepEqual([...(await generate(h, question)).sources], ["stand-in-provider"]);
      } finally {
        await setCapsuleEnv({ home: h.home, capsule: "cache" }, { TTL_SECONDS: "3600" });
      }
    });

    await t.step("an error stream reaches the caller and is not cached", async () => {
      const before = await counters(h);
      const failing = { messages: user("fail please [provider-error]") };
      for (let i = 0; i < 2; i++) {
        const call = await generate(h, failing);
        assert.deepEqual([...call.sources], ["stand-in-provider"]);
        assert.equal(call.last.type, "error");
        assert.equal((call.last.error as Json).kind, "provider_auth");
        assert.equal(call.text, "partial ");
      }
      const after = await counters(h);
      assert.equal(after.stores, before.stores);
      assert.equal(after.skipped, (before.skipped as number) + 2);
      assert.equal(after.misses, (before.misses as number) + 2);
    });

    await t.step("a stream over MAX_ENTRY_BYTES is passed on but not stored", async () => {
      await setCapsuleEnv({ home: h.home, capsule: "cache" }, { MAX_ENTRY_BYTES: "40" });
      try {
        const big = { messages: user("a fairly long question that will not fit in forty bytes") };
        const before = await counters(h);
        for (let i = 0; i < 2; i++) {
          const call = await generate(h, big);
          assert.deepEqual([...call.sources], ["stand-in-provider"]);
          assert.equal(call.last.type, "final");
        }
        const after = await counters(h);
        assert.equal(after.stores, before.stores);
        assert.equal(after.skipped, (before.skipped as number) + 2);
      } finally {
        await setCapsuleEnv({ home: h.home, capsule: "cache" }, { MAX_ENTRY_BYTES: "1048576" });
      }
    });

    await t.step(
      "the same call on another route misses; with no provider the fill gives up after FILL_WAIT_MS",
      async () => {
        await setCapsuleEnv({ home: h.home, capsule: "cache" }, { FILL_WAIT_MS: "300" });
        try {
          const before = await counters(h);
          // The stand-in route holds an entry for this very question.
          const key = entryKey(ROUTE, { model: "m1", max_tokens: 100, ...question });
          assert.ok((await h.daemon.store.get(ns("default"), key)) !== null);
          const report = fillReport(h, "r-nobody");
          const res = await h.publish("llm.v1.request.generate.nobody", {
            request_id: "r-nobody",
            session: "s-1",
            model: "m1",
            max_tokens: 100,
            ...question,
          }, { requestId: "r-nobody" });
          assert.equal(res.outcome, "delivered", "a miss: the call goes on, to nobody");
          const fill = await report.done;
          assert.deepEqual([fill.state, fill.stored, fill.messages], ["no_answer", false, 0]);
          const after = await counters(h);
          assert.equal(after.skipped, (before.skipped as number) + 1);
          assert.equal(after.misses, (before.misses as number) + 1);
          assert.match(
            await h.logText(),
            /miss nobody [0-9a-f]{12} for r-nobody: not stored \(no_answer\)/,
          );
        } finally {
          await setCapsuleEnv({ home: h.home, capsule: "cache" }, { FILL_WAIT_MS: "120000" });
        }
      },
    );

    await t.step("another principal does not see the entries of the first", async () => {
      const bobs = await generate(h, question, { principal: "bob" });
      assert.deepEqual([...bobs.sources], ["stand-in-provider"], "bob misses");
      const bobsAgain = await generate(h, question, { principal: "bob" });
      assert.deepEqual([...bobsAgain.sources], ["cache"], "bob hits his own entry");
      assert.deepEqual(await counters(h, "bob"), {
        hits: 1,
        misses: 1,
        stores: 1,
        expired: 0,
        skipped: 0,
      });
      const key = entryKey(ROUTE, { model: "m1", max_tokens: 100, ...question });
      assert.ok((await h.daemon.store.get(ns("bob"), key)) !== null);
    });

    await t.step(
      "a call the budget refuses is a miss that starts no fill (no FILL_WAIT_MS wait)",
      async () => {
        // Were a fill started, it would report no_answer after 300 ms; none comes in 2 s.
        await setCapsuleEnv({ home: h.home, capsule: "cache" }, { FILL_WAIT_MS: "300" });
        try {
          const before = await counters(h);
          const res = await refused(
            h,
            { messages: user("too expensive"), max_tokens: 1_000_000 },
            2_000,
          );
          assert.equal(res.published.outcome, "denied");
          if (res.published.outcome === "denied") {
            assert.match(
              res.published.reason,
              /^Budget refuses \$2[.0-9]*: above the per-action limit \$1 \(budget.per_action_usd\)$/,
            );
            assert.equal(res.published.by, "kernel:llm_budget");
          }
          assert.equal(res.fill, null, "no fill ran for the refused call");
          const unpriced = await refused(
            h,
            { messages: user("hello"), model: "m-unpriced" },
            1_000,
          );
          assert.equal(unpriced.published.outcome, "denied");
          if (unpriced.published.outcome === "denied") {
            assert.match(unpriced.published.reason, /"stand-in\/m-unpriced": it has no price/);
          }
          assert.equal(unpriced.fill, null);
          const after = await counters(h);
          assert.deepEqual(after, {
            ...before,
            misses: (before.misses as number) + 2,
          }, "two misses, nothing stored or skipped: no fill");
          const log = await h.logText();
          for (const rid of [res.requestId, unpriced.requestId]) {
            assert.doesNotMatch(log, new RegExp(`for ${rid}\\b`), `no fill logged for ${rid}`);
          }
        } finally {
          await setCapsuleEnv({ home: h.home, capsule: "cache" }, { FILL_WAIT_MS: "120000" });
        }
      },
    );

    await t.step(
      "a fill stores only the route provider's messages: a forged stream is refused",
      async () => {
        const forged = { messages: user("poison me"), model: "m1", max_tokens: 100 };
        const rid = "r-forged";
        const publishAs = (name: string, body: Json, end = false) =>
          h.bus.publish("llm.v1.stream.nobody", { request_id: rid, session: "s-1", ...body }, {
            ctx: { principal: principalId("default"), source: { kind: "capsule", name } },
            request_id: rid,
            ...(end ? { end_of_stream: true } : {}),
          });
        // Two capsules of the same principal allowed to publish on the route: a forger, and the
        // capsule PROVIDERS names for it.
        h.bus.setAcl("forger", { publish: ["llm.v1.stream.*"], subscribe: [] });
        h.bus.setAcl("nobody-provider", { publish: ["llm.v1.stream.*"], subscribe: [] });
        const before = await counters(h);
        const report = fillReport(h, rid);
        const res = await h.publish("llm.v1.request.generate.nobody", {
          request_id: rid,
          session: "s-1",
          ...forged,
        }, { requestId: rid });
        assert.equal(res.outcome, "delivered");
        // The forger answers first, with a whole stream; then the provider.
        await publishAs("forger", { type: "text_delta", text: "POISON" });
        await publishAs("forger", { type: "final", stop_reason: "end_turn" }, true);
        await publishAs("nobody-provider", { type: "text_delta", text: "genuine" });
        await publishAs("nobody-provider", {
          type: "final",
          stop_reason: "end_turn",
          usage: { input_tokens: 1, output_tokens: 1, model: "m1" },
        }, true);
        const fill = await report.done;
        assert.deepEqual(
          [fill.state, fill.stored, fill.messages, fill.rejected],
          ["complete", true, 2, 2],
        );
        const key = entryKey("nobody", forged);
        const entry = JSON.parse(
          new TextDecoder().decode((await h.daemon.store.get(ns("default"), key))!),
        );
        assert.deepEqual(entry.events.map((e: Json) => e.text ?? e.type), ["genuine", "final"]);
        const again = await generate(h, { messages: user("poison me") }, { route: "nobody" });
        assert.deepEqual([...again.sources], ["cache"]);
        assert.equal(again.text, "genuine");
        const after = await counters(h);
        assert.equal(after.stores, (before.stores as number) + 1);
        assert.equal((await stats(h)).rejected, 2);
        assert.match(
          await h.logText(),
          /miss nobody [0-9a-f]{12} for r-forged: refused a stream message from capsule:forger/,
        );
      },
    );

    await t.step("a route PROVIDERS does not name is not cached", async () => {
      const before = await counters(h);
      const res = await h.publish("llm.v1.request.generate.unnamed", {
        request_id: "r-unnamed",
        session: "s-1",
        model: "m1",
        max_tokens: 100,
        messages: user("hello"),
      }, { requestId: "r-unnamed" });
      assert.equal(res.outcome, "delivered");
      const after = await counters(h);
      assert.equal(after.misses, (before.misses as number) + 1);
      assert.equal(after.skipped, (before.skipped as number) + 1);
      assert.match(
        await h.logText(),
        /miss unnamed [0-9a-f]{12} for r-unnamed not cached: PROVIDERS names no capsule for route "unnamed"/,
      );
    });

    await t.step("a request carrying the cache field passes through untouched", async () => {
      const before = await counters(h);
      for (let i = 0; i < 2; i++) {
        const call = await generate(h, { ...question, cache: "bypass" });
        assert.deepEqual([...call.sources], ["stand-in-provider"]);
        assert.equal(call.published.outcome, "delivered");
      }
      assert.deepEqual(await counters(h), before);
    });

    await t.step("ENABLED = false lets every call through", async () => {
      await setCapsuleEnv({ home: h.home, capsule: "cache" }, { ENABLED: "false" });
      try {
        const call = await generate(h, question, { fill: false });
        assert.deepEqual([...call.sources], ["stand-in-provider"]);
        assert.equal(call.published.outcome, "delivered");
        assert.equal((await stats(h)).enabled, false);
      } finally {
        await setCapsuleEnv({ home: h.home, capsule: "cache" }, { ENABLED: "true" });
      }
    });

    await t.step("stats reports counters, entries and settings", async () => {
      const s = await stats(h);
      assert.equal(s.enabled, true);
      assert.equal(s.ttl_seconds, 3600);
      assert.equal(s.max_entry_bytes, 1048576);
      assert.ok((s.entries as number) >= 6, `entries: ${s.entries}`);
      assert.equal(s.hits, 4);
    });

    /** Publishes `cache.v1.request.clear` with `payload` and returns the answer. */
    const clear = async (payload: Json, principal = "default"): Promise<Json> => {
      const requestId = `clear-${++counter}`;
      const msg = await h.waitFor(
        "cache.v1.response.clear",
        () =>
          h.publish("cache.v1.request.clear", { request_id: requestId, ...payload }, {
            requestId,
            principal,
          }),
        { accept: (m) => m.request_id === requestId },
      );
      return messageJson<Json>(msg);
    };

    await t.step("clear with expired: true removes only expired entries", async () => {
      const key = entryKey(ROUTE, { model: "m1", max_tokens: 100, ...question });
      const entry = JSON.parse(
        new TextDecoder().decode((await h.daemon.store.get(ns("default"), key))!),
      );
      entry.stored_at -= 3600 * 1000;
      await h.daemon.store.set(ns("default"), key, new TextEncoder().encode(JSON.stringify(entry)));
      const before = (await stats(h)).entries as number;
      assert.equal((await clear({ expired: true })).cleared, 1);
      assert.equal((await clear({ expired: true })).cleared, 0, "nothing else had expired");
      assert.equal((await stats(h)).entries, before - 1);
      assert.equal(await h.daemon.store.get(ns("default"), key), null);
    });

    await t.step("clear removes only the principal's entries", async () => {
      const reply = await clear({});
      assert.ok((reply.cleared as number) >= 5, `cleared: ${reply.cleared}`);
      assert.equal((await stats(h)).entries, 0);
      assert.equal((await stats(h, "bob")).entries, 1, "bob's entry stays");
      assert.deepEqual([...(await generate(h, question)).sources], ["stand-in-provider"]);
      assert.deepEqual([...(await generate(h, question)).sources], ["cache"]);
    });

    await t.step("clear with reset_stats: true zeroes the counters", async () => {
      assert.equal((await clear({ reset_stats: true }, "bob")).stats_reset, true);
      assert.deepEqual(await counters(h, "bob"), {
        hits: 0,
        misses: 0,
        stores: 0,
        expired: 0,
        skipped: 0,
      });
    });

    await t.step("each hit and miss is logged", async () => {
      const log = await h.logText({ waitFor: /hit stand-in [0-9a-f]{12} for r-cache-/ });
      assert.match(log, /miss stand-in [0-9a-f]{12} for r-cache-\d+: stored 3 messages/);
      assert.match(log, /hit stand-in [0-9a-f]{12} for r-cache-\d+ \(3 messages/);
    });
  } finally {
    await h.close();
    await Deno.remove(stage, { recursive: true });
  }
});

Deno.test("cache capsule spares the real OpenAI-compatible provider its HTTP requests", async (t) => {
  const stage = await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-cache-openai-" });
  const fake = await startOpenAiFake({
    apiKey: "sk-cache-test",
    script: {
      turns: [
        { match: { lastMessage: "[500]" }, reply: { error: { status: 500, message: "boom" } } },
        {
          reply: {
            text: ["Cached ", "answer ", "here."],
            toolCalls: [{ name: "read_file", arguments: { path: "a.txt" } }],
          },
        },
      ],
    },
  });
  const h = await testCapsule(await loopbackCopy("provider-openai-compat", stage), {
    with: [CACHE_DIR],
    mode: "autonomous",
    configToml: PRICING,
    build: { cacheDir: testBuildCacheDir() },
    env: {
      API_KEY: "sk-cache-test",
      BASE_URL: fake.baseUrl,
      MODEL: "fake-model",
      RETRY_WAIT_MAX_MS: "0",
    },
  });
  const path = "/v1/chat/completions";
  try {
    const question = { model: "fake-model", messages: user("read a.txt") };
    const opts = { route: "openai" };
    const first = await generate(h, question, opts);
    const second = await generate(h, question, opts);

    await t.step("the first call reaches the server, the second does not", () => {
      assert.equal(fake.count(path), 1);
      assert.deepEqual([...first.sources], ["provider-openai-compat"]);
      assert.deepEqual([...second.sources], ["cache"]);
    });

    await t.step("the replay carries the same text and tool calls", () => {
      assert.equal(first.text, "Cached answer here.");
      assert.equal(second.text, first.text);
      const calls = (c: Call) =>
        c.events.filter((e) => e.type === "tool_call").map((e) => [e.call_id, e.name, e.arguments]);
      assert.deepEqual(calls(second), calls(first));
      assert.deepEqual(calls(first).map((c) => c[2]), [{ path: "a.txt" }]);
      assert.equal(second.last.stop_reason, "tool_use");
      assert.equal(second.last.cached, true);
      assert.equal((second.last.usage as Json).cost_usd, 0);
      assert.equal(
        (second.last.usage as Json).cached_output_tokens,
        (first.last.usage as Json).output_tokens,
      );
    });

    await t.step("an HTTP error is streamed as an error each time, never cached", async () => {
      const before = fake.count(path);
      for (let i = 0; i < 2; i++) {
        const call = await generate(h, { model: "fake-model", messages: user("[500]") }, opts);
        assert.equal(call.last.type, "error");
        assert.equal((call.last.error as Json).kind, "provider");
      }
      assert.equal(fake.count(path) - before, 4, "two calls, each tried twice (one retry)");
    });
  } finally {
    await h.close();
    await fake.close();
    await Deno.remove(stage, { recursive: true });
  }
});

Deno.test("cache capsule is transparent to the orchestrator's turns", async (t) => {
  const stage = await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-cache-orch-" });
  const h = await testCapsule(new URL("../capsules/orchestrator/", import.meta.url), {
    with: [
      new URL("../capsules/prompt-builder/", import.meta.url),
      await stageAsCapsule(STAND_IN, stage),
      CACHE_DIR,
    ],
    mode: "autonomous",
    configToml: PRICING,
    build: { cacheDir: testBuildCacheDir() },
    env: { PROVIDER: ROUTE, MODEL: "m1", STEP_TIMEOUT_MS: "20000" },
  });
  await setCapsuleEnv({ home: h.home, capsule: "cache" }, { PROVIDERS });
  const turn = async (text: string, session: string, options: { filled?: boolean } = {}) => {
    const requestId = `turn-${++counter}`;
    const streamed: BusMessage[] = [];
    const listener = h.bus.listen(`llm.v1.stream.${ROUTE}`, (m) => streamed.push(m));
    // The turn's first model call is `<requestId>.1`: its fill reports when it stored the answer.
    const report = fillReport(h, `${requestId}.1`, 30_000);
    report.done.catch(() => {});
    try {
      const msg = await h.waitFor(
        "agent.v1.response",
        () => h.publish("user.v1.prompt", { text, session, request_id: requestId }, { requestId }),
        { accept: (m) => m.request_id === requestId, timeoutMs: 30_000 },
      );
      if (options.filled) assert.equal((await report.done).stored, true);
      const sources = new Set(
        streamed.filter((m) => m.request_id?.startsWith(`${requestId}.`)).map((m) => m.source.name),
      );
      return { response: messageJson<Json>(msg), sources };
    } finally {
      listener.close();
      report.close();
    }
  };
  try {
    await t.step(
      "a repeated first turn is answered from the cache with the same text",
      async () => {
        const one = await turn("hello cache", "s-a", { filled: true });
        assert.deepEqual([...one.sources], ["stand-in-provider"]);
        assert.equal(one.response.text, "echo: hello cache");
        assert.equal(one.response.stop_reason, "end_turn");
        const two = await turn("hello cache", "s-b");
        assert.deepEqual([...two.sources], ["cache"]);
        assert.equal(two.response.text, one.response.text);
        assert.equal(two.response.stop_reason, "end_turn");
        assert.equal(two.response.error, undefined);
        assert.deepEqual(two.response.usage, {
          input_tokens: 0,
          output_tokens: 0,
          cost_usd: 0,
          model: "stand-in-model",
        });
      },
    );

    await t.step("a refused model call still ends the turn with budget_exhausted", async () => {
      const denied = await turn("spend it [budget]", "s-c");
      assert.equal(denied.response.stop_reason, "error");
      const error = denied.response.error as { kind: string; message: string };
      assert.equal(error.kind, "budget_exhausted");
      assert.match(error.message, /Budget exhausted: the session budget of \$0\.01 is spent$/);
    });

    await t.step("a provider error still ends the turn with the provider's kind", async () => {
      const failed = await turn("fail please [provider-error]", "s-d");
      assert.deepEqual(failed.response.error, {
        kind: "provider_auth",
        message: "The API key was refused (401)",
      });
    });
  } finally {
    await h.close();
    await Deno.remove(stage, { recursive: true });
  }
});

Deno.test("cache capsule fills and stores more concurrent misses than it has instances", async () => {
  const { h, stage } = await cacheWithStandIn("astrid-cache-par-");
  try {
    // Each miss's fill holds one instance while it records; the misses' interceptors return at
    // once, so more misses than instances are each recorded, stored, and answer again.
    const calls = await Promise.all(
      Array.from({ length: 6 }, (_, i) => generate(h, { messages: user(`parallel ${i}`) })),
    );
    for (const [i, call] of calls.entries()) {
      assert.equal(call.text, `echo: parallel ${i}`);
      assert.equal(call.last.type, "final");
      assert.deepEqual([...call.sources], ["stand-in-provider"]);
    }
    const again = await Promise.all(
      Array.from({ length: 6 }, (_, i) => generate(h, { messages: user(`parallel ${i}`) })),
    );
    for (const [i, call] of again.entries()) {
      assert.equal(call.text, `echo: parallel ${i}`);
      assert.equal(call.last.type, "final");
    }
    const s = await counters(h);
    if (Deno.env.get("SHOW_CACHE_LOG")) console.log(s, await h.logText());
    assert.equal(s.misses, 6);
    assert.equal(s.stores, 6);
    assert.equal(s.hits, 6);
    assert.equal(s.skipped, 0);
  } finally {
    await h.close();
    await Deno.remove(stage, { recursive: true });
  }
});
