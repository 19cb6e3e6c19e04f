/**
 * Proves DESIGN §6 item 3 end to end over a real bus, a SQLite store, the signed audit log and
 * the security pipeline: the kernel reserves a model call's estimate before the provider sees
 * it, commits the provider's reported usage and refunds the rest, refunds errors, refuses
 * unpriced models and exhausted budgets (audited), never overspends under 100 concurrent
 * calls, and charges nothing for a cache hit.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog } from "../kernel/audit/mod.ts";
import { TokenStore } from "../kernel/capabilities/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { type AstridConfig, DEFAULT_CONFIG } from "../kernel/config/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import {
  type BusMessage,
  EventBus,
  ManualTimers,
  type PublishResult,
} from "../kernel/events/mod.ts";
import { DEFAULT_PRINCIPAL } from "../kernel/identity/mod.ts";
import {
  InProcessApprovalBroker,
  installLlmBudget,
  type LlmBudget,
  SecurityInterceptor,
} from "../kernel/security/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";

const TOPIC = "llm.v1.request.generate.openai";
const ctx = { principal: DEFAULT_PRINCIPAL, source: { kind: "kernel" as const, name: "test" } };
const scope = { principal: DEFAULT_PRINCIPAL, session: "s1", workspace: "w1" };

interface Kernel {
  bus: EventBus;
  security: SecurityInterceptor;
  audit: AuditLog;
  store: SqliteStore;
  llm: LlmBudget;
  close(): Promise<void>;
}

/** A kernel over a temp SQLite store with `budget` limits and `[pricing]` of the defaults. */
async function kernel(budget: Partial<AstridConfig["budget"]> = {}): Promise<Kernel> {
  const root = await Deno.makeTempDir({ prefix: "astrid-llm-budget-" });
  const store = await SqliteStore.open(join(root, "state.db"));
  const key = await KeyPair.generate();
  const clock = new ManualClock(1_700_000_000_000);
  const timers = new ManualTimers(clock);
  const audit = new AuditLog(store, { signer: key, clock });
  const config: AstridConfig = {
    ...DEFAULT_CONFIG,
    budget: { ...DEFAULT_CONFIG.budget, ...budget },
  };
  const security = new SecurityInterceptor({
    config,
    audit,
    tokens: new TokenStore(store, { clock, trustedIssuers: [key.publicKey] }),
    store,
    signer: key,
    broker: new InProcessApprovalBroker(),
    clock,
    timers,
  });
  const bus = new EventBus({ clock, timers });
  const llm = installLlmBudget(bus, {
    security,
    config,
    timers,
    logger: { warn() {}, error() {} },
  });
  return {
    bus,
    security,
    audit,
    store,
    llm,
    async close() {
      llm.close();
      bus.close();
      await audit.close();
      store.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** One tool whose schema list is 1000 characters of JSON. */
const TOOLS = [{ name: "t", description: "", input_schema: { type: "object" } }];
TOOLS[0].description = "d".repeat(1000 - JSON.stringify(TOOLS).length);

/** 4000 prompt characters (1000 tokens) + 1000 output tokens of gpt-4.1 ($2/$8 per M): $0.01. */
function generate(requestId: string, model = "gpt-4.1") {
  return {
    session: "s1",
    workspace_id: "w1",
    request_id: requestId,
    model,
    system: "s".repeat(1000),
    messages: [{ role: "user", content: "u".repeat(2000) }],
    tools: TOOLS,
    max_tokens: 1000,
  };
}

/** The provider's last stream message for `requestId`. */
function final(bus: EventBus, requestId: string, input: number, output: number) {
  return bus.publish("llm.v1.stream.openai", {
    session: "s1",
    request_id: requestId,
    type: "final",
    stop_reason: "end_turn",
    model: "gpt-4.1",
    usage: { input_tokens: input, output_tokens: output, model: "gpt-4.1" },
  }, { ctx, request_id: requestId, end_of_stream: true });
}

/** Yields to the event loop (store and signing work) until `done()` holds. */
async function settle(done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1000 && !(await done()); i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

function reason(res: PublishResult): string {
  assert.equal(res.outcome, "denied");
  return res.outcome === "denied" ? res.reason : "";
}

Deno.test("LLM budget: the estimate is reserved before the provider sees the request", async () => {
  const k = await kernel();
  try {
    const seen: { msg: BusMessage; heldUsd: number }[] = [];
    k.bus.intercept(TOPIC, async (msg) => {
      seen.push({ msg, heldUsd: (await k.security.budget.usage(scope)).sessionHeldUsd });
      return { action: "continue" };
    }, { priority: 100, name: "provider" });
    assert.equal((await k.bus.publish(TOPIC, generate("r-1"), { ctx })).outcome, "delivered");
    assert.equal(seen.length, 1);
    assert.equal(seen[0].heldUsd, 0.01);
    const [entry] = await k.audit.list(DEFAULT_PRINCIPAL, { limit: 10 });
    assert.equal(entry.action, "llm.generate");
    assert.equal(entry.decision, "allowed");
  } finally {
    await k.close();
  }
});

Deno.test("LLM budget: final usage commits the actual cost durably, an error refunds all", async () => {
  const k = await kernel();
  try {
    await k.bus.publish(TOPIC, generate("r-1"), { ctx });
    await final(k.bus, "r-1", 1200, 300); // 1200 × $2/M + 300 × $8/M = $0.0048
    let usage = await k.security.budget.usage(scope);
    assert.deepEqual(usage, {
      sessionSpentUsd: 0.0048,
      sessionHeldUsd: 0,
      workspaceSpentUsd: 0.0048,
      workspaceHeldUsd: 0,
    });
    // Persisted per (principal, workspace) in nano-dollars.
    const record = async () =>
      await k.store.get(`${DEFAULT_PRINCIPAL}:kernel:budget`, "workspace/w1");
    await settle(async () => (await record()) !== null);
    const bytes = await record();
    assert.deepEqual(JSON.parse(new TextDecoder().decode(bytes!)), { spent_nano_usd: 4_800_000 });

    await k.bus.publish(TOPIC, generate("r-2"), { ctx });
    assert.equal((await k.security.budget.usage(scope)).sessionHeldUsd, 0.01);
    await k.bus.publish("llm.v1.stream.openai", {
      session: "s1",
      request_id: "r-2",
      type: "error",
      error: { kind: "provider", message: "HTTP 500" },
    }, { ctx, request_id: "r-2", end_of_stream: true });
    usage = await k.security.budget.usage(scope);
    assert.equal(usage.sessionHeldUsd, 0);
    assert.equal(usage.sessionSpentUsd, 0.0048);
    assert.equal(k.llm.pending, 0);
  } finally {
    await k.close();
  }
});

Deno.test("LLM budget: an unpriced model and an exhausted session are denied and audited", async () => {
  const k = await kernel({ session_usd: 0.015 });
  try {
    let providerCalls = 0;
    k.bus.intercept(TOPIC, () => {
      providerCalls++;
      return { action: "continue" };
    }, { priority: 100 });
    const unpriced = reason(await k.bus.publish(TOPIC, generate("r-1", "gpt-x"), { ctx }));
    assert.match(unpriced, /"openai\/gpt-x": it has no price; add \[pricing\."openai\/gpt-x"\]/);

    await k.bus.publish(TOPIC, generate("r-2"), { ctx });
    const exhausted = reason(await k.bus.publish(TOPIC, generate("r-3"), { ctx }));
    assert.equal(
      exhausted,
      "Budget refuses $0.01: the session has $0.01 spent or held of $0.015 (budget.session_usd)",
    );
    assert.equal(providerCalls, 1);

    const entries = (await k.audit.list(DEFAULT_PRINCIPAL, { limit: 10 }))
      .filter((e) => e.decision === "denied");
    assert.deepEqual(
      entries.map((e) => [e.layer, e.rule]).sort(),
      [
        ["budget", "pricing"],
        ["budget", "budget.session_usd"],
      ].sort(),
    );
  } finally {
    await k.close();
  }
});

Deno.test("LLM budget: 100 concurrent calls never overspend the session", async () => {
  const k = await kernel({ session_usd: 0.5 });
  try {
    let maxHeld = 0;
    k.bus.intercept(TOPIC, async () => {
      const u = await k.security.budget.usage(scope);
      maxHeld = Math.max(maxHeld, u.sessionHeldUsd + u.sessionSpentUsd);
      return { action: "continue" };
    }, { priority: 100 });
    const ids = Array.from({ length: 100 }, (_, i) => `r-${i}`);
    const results = await Promise.all(ids.map((id) => k.bus.publish(TOPIC, generate(id), { ctx })));
    const allowed = ids.filter((_, i) => results[i].outcome === "delivered");
    assert.equal(allowed.length, 50); // 50 × $0.01 = the $0.50 limit
    assert.ok(maxHeld <= 0.5);
    assert.equal(k.llm.pending, 50);
    await Promise.all(allowed.map((id) => final(k.bus, id, 1000, 250))); // $0.004 each
    const usage = await k.security.budget.usage(scope);
    assert.equal(usage.sessionHeldUsd, 0);
    assert.equal(usage.sessionSpentUsd, 0.2);
  } finally {
    await k.close();
  }
});

Deno.test("LLM budget: a Final from a priority-50 cache costs nothing", async () => {
  const k = await kernel();
  try {
    let providerCalls = 0;
    k.bus.intercept(TOPIC, () => ({ action: "final", reply: { cached: true } }), {
      priority: 50,
      name: "cache",
    });
    k.bus.intercept(TOPIC, () => {
      providerCalls++;
      return { action: "continue" };
    }, { priority: 100 });
    const res = await k.bus.publish(TOPIC, generate("r-1"), { ctx });
    assert.equal(res.outcome, "final");
    assert.equal(providerCalls, 0);
    assert.equal(k.llm.pending, 0);
    const usage = await k.security.budget.usage(scope);
    assert.deepEqual([usage.sessionHeldUsd, usage.sessionSpentUsd], [0, 0]);
  } finally {
    await k.close();
  }
});
