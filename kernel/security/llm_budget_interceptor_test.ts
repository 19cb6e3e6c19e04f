import assert from "node:assert/strict";
import { EventBus, type PublishResult } from "../events/mod.ts";
import { DEFAULT_PRINCIPAL, principalId } from "../identity/mod.ts";
import { type Rig, rig, who } from "./_test_helpers.ts";
import {
  installLlmBudget,
  type LlmBudget,
  type LlmBudgetOptions,
  promptChars,
} from "./llm_budget_interceptor.ts";

const ctx = { principal: DEFAULT_PRINCIPAL, source: { kind: "kernel" as const, name: "test" } };
const scope = { principal: DEFAULT_PRINCIPAL, session: who.session, workspace: who.workspace };

/** A generate payload with 4000 prompt characters (1000 tokens) and 1000 output tokens. */
function request(requestId: string, extra: Record<string, unknown> = {}) {
  return {
    session: who.session,
    workspace_id: who.workspace,
    request_id: requestId,
    model: "gpt-4.1", // $2 in, $8 out per million: estimate $0.002 + $0.008
    system: "s".repeat(1000),
    messages: [{ role: "user", content: "u".repeat(3000) }],
    max_tokens: 1000,
    ...extra,
  };
}

async function setup(
  overrides: Parameters<typeof rig>[0] = {},
  options: Partial<LlmBudgetOptions> = {},
): Promise<{ r: Rig; bus: EventBus; llm: LlmBudget }> {
  const r = await rig(overrides);
  const bus = new EventBus({ clock: r.clock, timers: r.timers });
  const llm = installLlmBudget(bus, {
    security: r.security,
    config: r.config,
    timers: r.timers,
    logger: { warn() {}, error() {} },
    ...options,
  });
  return { r, bus, llm };
}

function stream(bus: EventBus, requestId: string, body: Record<string, unknown>, end = true) {
  return bus.publish("llm.v1.stream.openai", {
    session: who.session,
    request_id: requestId,
    ...body,
  }, {
    ctx,
    request_id: requestId,
    end_of_stream: end,
  });
}

Deno.test("promptChars() counts system, messages, tool calls and tool schemas", () => {
  const tools = [{ name: "t", description: "d", input_schema: { type: "object" } }];
  const calls = [{ call_id: "c", name: "t", arguments: {} }];
  const n = promptChars({
    system: "abcd",
    messages: [{ role: "user", content: "12345" }, {
      role: "assistant",
      content: "",
      tool_calls: calls,
    }],
    tools,
  });
  assert.equal(n, 4 + 5 + JSON.stringify(calls).length + JSON.stringify(tools).length);
  assert.equal(promptChars({}), 0);
});

Deno.test("installLlmBudget() reserves before the provider and settles from the stream", async (t) => {
  await t.step(
    "the reservation exists when the provider interceptor sees the request",
    async () => {
      const { r, bus, llm } = await setup();
      let heldAtProvider = -1;
      bus.intercept("llm.v1.request.generate.openai", async () => {
        heldAtProvider = (await r.security.budget.usage(scope)).sessionHeldUsd;
        return { action: "continue" };
      });
      const result = await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
      assert.equal(result.outcome, "delivered");
      assert.equal(heldAtProvider, 0.01);
      assert.equal(llm.pending, 1);
      llm.close();
    },
  );

  await t.step("final usage commits the actual cost and refunds the rest", async () => {
    const { r, bus, llm } = await setup();
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    await stream(bus, "r-1", { type: "text_delta", text: "hi" }, false);
    assert.equal(llm.pending, 1);
    await stream(bus, "r-1", {
      type: "final",
      stop_reason: "end_turn",
      model: "gpt-4.1",
      usage: { input_tokens: 1000, output_tokens: 250, model: "gpt-4.1" },
    });
    assert.equal(llm.pending, 0);
    const usage = await r.security.budget.usage(scope);
    assert.equal(usage.sessionHeldUsd, 0);
    assert.equal(usage.sessionSpentUsd, 0.004); // 1000 × $2/M + 250 × $8/M
    assert.equal(usage.workspaceSpentUsd, 0.004);
  });

  await t.step("an error message refunds everything", async () => {
    const { r, bus, llm } = await setup();
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    await stream(bus, "r-1", { type: "error", error: { kind: "provider", message: "500" } });
    assert.equal(llm.pending, 0);
    const usage = await r.security.budget.usage(scope);
    assert.deepEqual([usage.sessionHeldUsd, usage.sessionSpentUsd], [0, 0]);
  });

  await t.step("a stream of another principal does not settle it", async () => {
    const { bus, llm } = await setup();
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    await bus.publish("llm.v1.stream.openai", { request_id: "r-1", type: "error" }, {
      ctx: { ...ctx, principal: principalId("mallory") },
    });
    assert.equal(llm.pending, 1);
    llm.close();
  });

  await t.step("no stream message within the settle timeout refunds everything", async () => {
    const { r, bus, llm } = await setup({}, { settleTimeoutMs: 1000 });
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    r.timers.advance(999);
    assert.equal(llm.pending, 1);
    r.timers.advance(1);
    assert.equal(llm.pending, 0);
    assert.equal((await r.security.budget.usage(scope)).sessionHeldUsd, 0);
  });
});

Deno.test("installLlmBudget() denies what it cannot meter", async (t) => {
  const deniedReason = (res: PublishResult): string => {
    assert.equal(res.outcome, "denied");
    return res.outcome === "denied" ? res.reason : "";
  };

  await t.step("a model without a price is denied and audited", async () => {
    const { r, bus, llm } = await setup();
    let seen = false;
    bus.intercept("llm.v1.request.generate.openai", () => {
      seen = true;
      return { action: "continue" };
    });
    const res = await bus.publish(
      "llm.v1.request.generate.openai",
      request("r-1", { model: "gpt-x" }),
      { ctx },
    );
    assert.match(deniedReason(res), /no price; add \[pricing\."openai\/gpt-x"\]/);
    assert.equal(seen, false);
    const [entry] = await r.audit.list(DEFAULT_PRINCIPAL, { limit: 10 });
    assert.equal(entry.decision, "denied");
    assert.equal(entry.layer, "budget");
    assert.equal(llm.pending, 0);
  });

  await t.step("a request without max_tokens or model is denied", async () => {
    const { bus } = await setup();
    const noMax = await bus.publish(
      "llm.v1.request.generate.openai",
      request("r-1", { max_tokens: undefined }),
      { ctx },
    );
    assert.match(deniedReason(noMax), /max_tokens "undefined"/);
    const noModel = await bus.publish(
      "llm.v1.request.generate.openai",
      request("r-2", { model: undefined }),
      { ctx },
    );
    assert.match(deniedReason(noModel), /names no model/);
  });

  await t.step("an exhausted session budget is denied with the reason", async () => {
    const { bus, llm } = await setup({ session_usd: 0.015 });
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    const res = await bus.publish("llm.v1.request.generate.openai", request("r-2"), { ctx });
    assert.match(deniedReason(res), /the session has \$0\.01 spent or held of \$0\.015/);
    llm.close();
  });

  await t.step("a request id already in flight is denied", async () => {
    const { bus, llm } = await setup();
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    const res = await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    assert.match(deniedReason(res), /already in flight/);
    llm.close();
  });
});

Deno.test("installLlmBudget() lets a cache hit and a router route cost nothing", async (t) => {
  await t.step("a Final from a priority-50 interceptor never reserves", async () => {
    const { r, bus, llm } = await setup();
    bus.intercept("llm.v1.request.generate.openai", () => ({ action: "final" }), { priority: 50 });
    const res = await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    assert.equal(res.outcome, "final");
    assert.equal(llm.pending, 0);
    const usage = await r.security.budget.usage(scope);
    assert.deepEqual([usage.sessionHeldUsd, usage.sessionSpentUsd], [0, 0]);
  });

  await t.step("a router's own route is not metered, its attempts are", async () => {
    const { bus, llm } = await setup({}, { routers: ["router"] });
    const res = await bus.publish(
      "llm.v1.request.generate.router",
      request("r-1", { model: "unpriced" }),
      { ctx },
    );
    assert.equal(res.outcome, "delivered");
    assert.equal(llm.pending, 0);
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    assert.equal(llm.pending, 1);
    llm.close();
  });
});

Deno.test("LlmBudget.metered() is true only while the guard's decision for the call stands", async (t) => {
  await t.step("true after the guard allowed it, false once settled by final", async () => {
    const { bus, llm } = await setup();
    let atProvider = false;
    let beforeGuard = true;
    bus.intercept("llm.v1.request.generate.openai", () => {
      beforeGuard = llm.metered(DEFAULT_PRINCIPAL, "r-1");
      return { action: "continue" };
    }, { priority: 50 });
    bus.intercept("llm.v1.request.generate.openai", () => {
      atProvider = llm.metered(DEFAULT_PRINCIPAL, "r-1", { provider: "openai" });
      return { action: "continue" };
    });
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    assert.equal(beforeGuard, false, "an interceptor ahead of the guard sees no decision");
    assert.equal(atProvider, true);
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-1"), true);
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-1", { provider: "anthropic" }), false);
    assert.equal(llm.metered(principalId("mallory"), "r-1"), false);
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-2"), false);
    await stream(bus, "r-1", {
      type: "final",
      stop_reason: "end_turn",
      usage: { input_tokens: 10, output_tokens: 10 },
    });
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-1"), false);
  });

  await t.step("false after a refund: error, settle timeout, close", async () => {
    const { r, bus, llm } = await setup({}, { settleTimeoutMs: 1000 });
    await bus.publish("llm.v1.request.generate.openai", request("r-1"), { ctx });
    await stream(bus, "r-1", { type: "error", error: { kind: "provider", message: "500" } });
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-1"), false);
    await bus.publish("llm.v1.request.generate.openai", request("r-2"), { ctx });
    r.timers.advance(1000);
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-2"), false);
    await bus.publish("llm.v1.request.generate.openai", request("r-3"), { ctx });
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-3"), true);
    llm.close();
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-3"), false);
  });

  await t.step("false for a denied call and for a router's unmetered route", async () => {
    const { bus, llm } = await setup({}, { routers: ["router"] });
    await bus.publish("llm.v1.request.generate.openai", request("r-1", { model: "gpt-x" }), {
      ctx,
    });
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-1"), false, "unpriced: denied");
    let atRouter = true;
    bus.intercept("llm.v1.request.generate.router", () => {
      atRouter = llm.metered(DEFAULT_PRINCIPAL, "r-2", { provider: "router" });
      return { action: "continue" };
    });
    const res = await bus.publish("llm.v1.request.generate.router", request("r-2"), { ctx });
    assert.equal(res.outcome, "delivered");
    assert.equal(atRouter, false);
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-2"), false);
    // The router's attempt on a real route is metered under its own request id.
    await bus.publish("llm.v1.request.generate.openai", request("r-2~1"), { ctx });
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-2~1", { provider: "openai" }), true);
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-2~1", { provider: "router" }), false);
    llm.close();
  });

  await t.step("a free model's call is tracked until its terminal message", async () => {
    const { bus, llm } = await setup();
    await bus.publish("llm.v1.request.generate.local", request("r-1", { model: "qwen" }), {
      ctx,
    });
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-1", { provider: "local" }), true);
    await bus.publish("llm.v1.stream.local", { request_id: "r-1", type: "final" }, {
      ctx,
      request_id: "r-1",
      end_of_stream: true,
    });
    assert.equal(llm.metered(DEFAULT_PRINCIPAL, "r-1", { provider: "local" }), false);
    assert.equal(llm.pending, 0);
  });
});
