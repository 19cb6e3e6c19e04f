/**
 * The concurrency acceptance (issue 9): 1,000 concurrent prompts from 1,000 distinct principals
 * against the fake provider — every one answered, each with its own principal's content (no
 * cross-delivery), none dropped.
 *
 * The stack is real (`bench/agent_turn_rig.ts`): the kernel booted in-process with the real
 * `orchestrator` and `provider-openai-compat` capsules installed by the operator, whose `[env]`
 * values serve every principal, against the OpenAI fake playing `echo.json` (each answer is
 * `echo: <the prompt>`). Each principal has its own daemon socket connection (the daemon stamps
 * the principal and session), subscribes to `agent.v1.response` and publishes one
 * `user.v1.prompt` carrying a token made of its name and a random nonce; all 1,000 are in flight
 * at once. Each connection must receive exactly its own answer — `echo: <its token>`, stamped
 * with its principal, `end_turn` — and nothing else; the fake must have served exactly 1,000 chat
 * requests. Throughput and latency are the bench's (`bench/agent_turn_latency.ts`), never
 * asserted here.
 *
 * Hard deadline: the whole test fails at {@link DEADLINE_MS} instead of hanging.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../kernel/daemon/mod.ts";
import { AgentRig, promptThroughClient, type TurnResult } from "../bench/agent_turn_rig.ts";

/** Concurrent principals, one prompt each. */
const PRINCIPALS = 1_000;
/** The whole test (boot and builds included) fails past this. */
const DEADLINE_MS = 240_000;
/** One turn may take this long (the queue of 1,000 turns on 2 cores included). */
const TURN_TIMEOUT_MS = 180_000;

/** Rejects after `ms` so that `work` can never hang the run. */
async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "1,000 concurrent prompts from 1,000 principals are each answered with their own content",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const started = performance.now();
    const left = () => Math.max(1, DEADLINE_MS - (performance.now() - started));
    const rig = await withDeadline(AgentRig.start(), left(), "Booting the agent stack");
    const clients: DaemonClient[] = [];
    try {
      const names = Array.from({ length: PRINCIPALS }, (_, i) => `c${String(i).padStart(4, "0")}`);
      const nonce = crypto.randomUUID().slice(0, 8);
      const token = (p: string) => `token-${p}-${nonce}`;

      await t.step("the operator's configuration answers a first turn", async () => {
        const warm = await withDeadline(
          rig.promptOnBus("default", "warm up", 60_000),
          left(),
          "A first turn",
        );
        assert.equal(warm.text, "echo: warm up", warm.error);
      });

      await t.step("1,000 principals each connect to the daemon socket", async () => {
        clients.push(
          ...await withDeadline(
            Promise.all(names.map((p) => rig.connect(p))),
            left(),
            "Connecting",
          ),
        );
        assert.deepEqual(clients.map((c) => c.welcome.principal), names);
      });

      let results: PromiseSettledResult<TurnResult>[] = [];
      await t.step("all 1,000 prompts in flight at once are answered", async () => {
        rig.fake.reset();
        results = await withDeadline(
          Promise.allSettled(
            clients.map((c, i) => promptThroughClient(c, token(names[i]), TURN_TIMEOUT_MS)),
          ),
          left(),
          "1,000 concurrent turns",
        );
        const failed = results.flatMap((r, i) =>
          r.status === "rejected" ? [`${names[i]}: ${(r.reason as Error).message}`] : []
        );
        assert.deepEqual(failed.slice(0, 5), [], `${failed.length} turns failed`);
      });

      await t.step("each answer is its own principal's, and nothing else reached it", () => {
        const wrong: string[] = [];
        results.forEach((r, i) => {
          if (r.status !== "fulfilled") return;
          const v = r.value;
          const p = names[i];
          if (
            v.principal !== p || v.text !== `echo: ${token(p)}` || v.stopReason !== "end_turn" ||
            v.foreign !== 0
          ) {
            wrong.push(`${p}: ${JSON.stringify(v)}`);
          }
        });
        assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} answers were not their own`);
      });

      await t.step("none dropped or repeated: the fake served exactly one request each", () => {
        assert.equal(rig.fake.count("/v1/chat/completions"), PRINCIPALS);
        const asked = new Set(
          rig.fake.requests.map((r) => {
            const body = r.body as { messages?: unknown[] } | undefined;
            const last = JSON.stringify(body?.messages?.at(-1) ?? null);
            return /token-c\d{4}-[0-9a-f]{8}/.exec(last)?.[0] ?? last;
          }),
        );
        assert.equal(asked.size, PRINCIPALS);
        for (const p of names) assert.ok(asked.has(token(p)), `the fake never saw ${p}'s prompt`);
      });
    } finally {
      await Promise.allSettled(clients.map((c) => c.close()));
      await rig[Symbol.asyncDispose]();
    }
  },
});
