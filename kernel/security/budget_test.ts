import assert from "node:assert/strict";
import { DEFAULT_CONFIG } from "../config/mod.ts";
import { hasCode } from "../errors.ts";
import { MemoryStore } from "../storage/mod.ts";
import { Budget, costUsd, estimateGenerateUsd } from "./budget.ts";
import { SecurityCode } from "./errors.ts";

const scope = { principal: "default", session: "s1", workspace: "w1" };
const limits = { session_usd: 1, workspace_usd: 2, per_action_usd: 0.5 };

Deno.test("Budget.reserve() refuses above the per-action, session and workspace limits", async (t) => {
  await t.step("per action", async () => {
    const budget = new Budget(new MemoryStore());
    await assert.rejects(
      budget.reserve(scope, { usd: 0.6, limits }),
      (err: unknown) => hasCode(err, SecurityCode.BUDGET_PER_ACTION_EXCEEDED),
    );
  });
  await t.step("session", async () => {
    const budget = new Budget(new MemoryStore());
    await (await budget.reserve(scope, { usd: 0.5, limits })).commit(0.5);
    await budget.reserve(scope, { usd: 0.5, limits }); // held, not committed
    await assert.rejects(
      budget.reserve(scope, { usd: 0.01, limits }),
      (err: unknown) => hasCode(err, SecurityCode.BUDGET_SESSION_EXHAUSTED),
    );
    const usage = await budget.usage(scope);
    assert.deepEqual(usage, {
      sessionSpentUsd: 0.5,
      sessionHeldUsd: 0.5,
      workspaceSpentUsd: 0.5,
      workspaceHeldUsd: 0.5,
    });
  });
  await t.step("workspace, across sessions", async () => {
    const budget = new Budget(new MemoryStore());
    for (const session of ["a", "b", "c", "d"]) {
      await (await budget.reserve({ ...scope, session }, { usd: 0.5, limits })).commit(0.5);
    }
    await assert.rejects(
      budget.reserve({ ...scope, session: "e" }, { usd: 0.1, limits }),
      (err: unknown) => hasCode(err, SecurityCode.BUDGET_WORKSPACE_EXHAUSTED),
    );
    // Another principal's workspace budget is its own.
    await budget.reserve({ ...scope, principal: "bob" }, { usd: 0.1, limits });
  });
});

Deno.test("Reservation.commit() charges the actual cost and refunds the rest", async () => {
  const budget = new Budget(new MemoryStore());
  const r = await budget.reserve(scope, { usd: 0.4, limits });
  assert.equal(r.amountUsd, 0.4);
  await r.commit(0.1);
  assert.equal(r.settled, true);
  const usage = await budget.usage(scope);
  assert.equal(usage.sessionSpentUsd, 0.1);
  assert.equal(usage.sessionHeldUsd, 0);
  await assert.rejects(
    r.commit(0.1),
    (err: unknown) => hasCode(err, SecurityCode.RESERVATION_SETTLED),
  );
  assert.throws(
    () => r.release(),
    (err: unknown) => hasCode(err, SecurityCode.RESERVATION_SETTLED),
  );
});

Deno.test("Reservation.release() and an aborted signal refund everything", async () => {
  const budget = new Budget(new MemoryStore());
  const r = await budget.reserve(scope, { usd: 0.5, limits });
  r.release();
  r.release(); // idempotent
  const controller = new AbortController();
  const r2 = await budget.reserve(scope, { usd: 0.5, limits, signal: controller.signal });
  assert.equal((await budget.usage(scope)).sessionHeldUsd, 0.5);
  controller.abort();
  assert.equal(r2.settled, true);
  const usage = await budget.usage(scope);
  assert.equal(usage.sessionHeldUsd + usage.sessionSpentUsd + usage.workspaceHeldUsd, 0);
  await assert.rejects(budget.reserve(scope, { usd: 0.1, limits, signal: controller.signal }));
});

Deno.test("Budget.reserve() never overspends under 1,000 parallel reservations", async () => {
  const store = new MemoryStore();
  const budget = new Budget(store);
  const tight = { session_usd: 10, workspace_usd: 3.3, per_action_usd: 1 };
  const results = await Promise.allSettled(
    Array.from(
      { length: 1000 },
      (_, i) => budget.reserve({ ...scope, session: `s${i % 7}` }, { usd: 0.01, limits: tight }),
    ),
  );
  const held = results.filter((r) => r.status === "fulfilled");
  assert.equal(held.length, 330);
  const usage = await budget.usage(scope);
  assert.equal(usage.workspaceHeldUsd, 3.3);
  // Commit them all in parallel: the persisted total is exact.
  await Promise.all(
    held.map((r) =>
      (r as PromiseFulfilledResult<{ commit(n: number): Promise<void> }>).value.commit(0.01)
    ),
  );
  const fresh = new Budget(store);
  assert.equal((await fresh.usage(scope)).workspaceSpentUsd, 3.3);
});

Deno.test("Budget persists workspace spend across instances and keeps session spend in memory", async () => {
  const store = new MemoryStore();
  const first = new Budget(store);
  await (await first.reserve(scope, { usd: 0.5, limits })).commit(0.25);
  const second = new Budget(store);
  const usage = await second.usage(scope);
  assert.equal(usage.workspaceSpentUsd, 0.25);
  assert.equal(usage.sessionSpentUsd, 0);
});

Deno.test("Budget.check() refuses as reserve() would without holding", async () => {
  const budget = new Budget(new MemoryStore());
  await budget.check(scope, { usd: 0.5, limits });
  assert.equal((await budget.usage(scope)).sessionHeldUsd, 0);
  await assert.rejects(
    budget.check(scope, { usd: 0.7, limits }),
    (err: unknown) => hasCode(err, SecurityCode.BUDGET_PER_ACTION_EXCEEDED),
  );
  await assert.rejects(
    budget.check(scope, { usd: Number.NaN, limits }),
    (err: unknown) => hasCode(err, SecurityCode.BUDGET_BAD_AMOUNT),
  );
});

Deno.test("estimateGenerateUsd() prices prompt chars / 4 plus max tokens of output", () => {
  const price = DEFAULT_CONFIG.pricing["openai/gpt-4o"]; // 2.5 in, 10 out per Mtok
  // 4,000 chars → 1,000 input tokens = $0.0025; 1,000 output tokens = $0.01.
  assert.equal(estimateGenerateUsd(price, { promptChars: 4000, maxTokens: 1000 }), 0.0125);
  assert.equal(estimateGenerateUsd(price, { promptChars: 1, maxTokens: 0 }), 0.0000025);
  assert.equal(costUsd(price, 0, 0), 0);
});
