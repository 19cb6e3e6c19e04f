import assert from "node:assert/strict";
import type { AuditInput, AuditLog } from "../audit/mod.ts";
import { ManualClock } from "../clock.ts";
import { EventBus } from "../events/mod.ts";
import { DEFAULT_PRINCIPAL, principalId } from "../identity/mod.ts";
import { type CapsuleHost, EmptyCapsuleHost, type PromptContextSource } from "./capsule_host.ts";
import { DaemonLog } from "./_daemon_log.ts";
import { managementRequest, ManagementRouter } from "./_management_router.ts";
import type { DaemonStatusWire } from "./protocol.ts";
import { SlidingWindowLimiter } from "./sliding_window_limiter.ts";

function setup(capsules: CapsuleHost = new EmptyCapsuleHost()) {
  const clock = new ManualClock(0);
  const bus = new EventBus({ clock });
  const audited: AuditInput[] = [];
  const audit = {
    append: (e: AuditInput) => (audited.push(e), Promise.resolve()),
  } as unknown as AuditLog;
  const stopped: string[] = [];
  const router = new ManagementRouter({
    bus,
    capsules,
    audit,
    log: DaemonLog.discard(clock),
    clock,
    reloadLimiter: new SlidingWindowLimiter(clock, { limit: 5, windowMs: 60_000 }),
    status: () => ({ pid: 1 }) as unknown as DaemonStatusWire,
    shutdown: (reason) => stopped.push(reason),
  });
  router.start();
  const ctx = { principal: DEFAULT_PRINCIPAL, source: { kind: "kernel", name: "test" } } as const;
  const ask = async (
    topic: string,
    params: Record<string, string> = {},
    principal: string = DEFAULT_PRINCIPAL,
  ): Promise<unknown> =>
    (await bus.request(`astrid.v1.request.${topic}`, params, {
      ctx: { ...ctx, principal: principalId(principal) },
      timeoutMs: 1_000,
    })).payload;
  return { clock, bus, router, audited, stopped, ask };
}

Deno.test("ManagementRouter answers astrid.v1.request.* on the bus", async (t) => {
  const { bus, router, audited, stopped, ask, clock } = setup();
  try {
    await t.step("read-only requests: ListCapsules, GetCommands, Status", async () => {
      assert.deepEqual(await ask("list_capsules"), {
        kind: "json",
        value: { ok: true, result: [] },
      });
      assert.deepEqual(await ask("get_commands"), {
        kind: "json",
        value: { ok: true, result: [] },
      });
      assert.deepEqual(await ask("status"), {
        kind: "json",
        value: { ok: true, result: { pid: 1 } },
      });
      assert.deepEqual(audited, []);
    });

    await t.step(
      "GetCapsuleMetadata: INVALID_PARAMS without a name, NOT_FOUND when unknown",
      async () => {
        const a = await ask("get_capsule_metadata");
        assert.equal(
          (a as { value: { error: { code: string } } }).value.error.code,
          "INVALID_PARAMS",
        );
        const b = await ask("get_capsule_metadata", { name: "weather" });
        assert.deepEqual(b, {
          kind: "json",
          value: {
            ok: false,
            error: {
              code: "NOT_FOUND",
              message: 'No capsule "weather" is loaded',
              data: { name: "weather" },
            },
          },
        });
      },
    );

    await t.step(
      "ReloadCapsules: five a minute, each audited, the sixth refused and audited",
      async () => {
        for (let i = 0; i < 5; i++) {
          const r = await ask("reload_capsules");
          assert.deepEqual(r, {
            kind: "json",
            value: { ok: true, result: { loaded: [], failed: [] } },
          });
        }
        const refused = (await ask("reload_capsules")) as {
          value: { ok: false; error: { code: string; data: { retry_after_ms: number } } };
        };
        assert.equal(refused.value.error.code, "RATE_LIMITED");
        assert.equal(refused.value.error.data.retry_after_ms, 60_000);
        assert.equal(audited.length, 6);
        assert.deepEqual(
          audited.map((e) => e.decision),
          ["allowed", "allowed", "allowed", "allowed", "allowed", "denied"],
        );
        assert.equal(audited[5].layer, "management");
        assert.equal(audited[5].rule, "rate_limit:5/60s");
        clock.advance(60_000);
        assert.equal(((await ask("reload_capsules")) as { value: { ok: boolean } }).value.ok, true);
      },
    );

    await t.step("Shutdown: audited, answered, then the daemon is told", async () => {
      const before = audited.length;
      const r = await ask("shutdown", { reason: "test" });
      assert.deepEqual(r, { kind: "json", value: { ok: true, result: { stopping: true } } });
      assert.deepEqual(stopped, ["test"]);
      assert.equal(audited[before].action, "daemon.shutdown");
      assert.equal(audited[before].decider, "operator");
    });

    await t.step("handle() serves the socket with the caller's principal", async () => {
      const out = await router.handle("ListCapsules", undefined, {
        principal: principalId("alice"),
        via: "client:c-1",
      });
      assert.deepEqual(out, { ok: true, result: [] });
    });

    await t.step("names parse in either form", () => {
      assert.equal(managementRequest("ListCapsules"), "ListCapsules");
      assert.equal(managementRequest("reload_capsules"), "ReloadCapsules");
      assert.equal(managementRequest("InstallCapsule"), undefined);
      assert.equal(managementRequest("toString"), undefined);
    });
  } finally {
    router.stop();
    bus.close();
  }
});

/** A host whose static content depends on who asks: the operator's for all, bob's for bob. */
function scopedHost() {
  const asked: { principal: string; workspaceId?: string }[] = [];
  const promptContext = (
    principal: string,
    options: { workspaceId?: string } = {},
  ): PromptContextSource => {
    asked.push({ principal, ...options });
    const context = [{ capsule: "notes", file: "static/context.md", text: "Operator notes." }];
    if (principal === "bob") {
      context.push({ capsule: "bob-notes", file: "static/context.md", text: "Bob's notes." });
    }
    return {
      context,
      skills: [{
        capsule: "notes",
        name: "research",
        description: "When researching",
        file: "static/skills/research.md",
        text: "Use sources.",
      }],
    };
  };
  const host: CapsuleHost = Object.assign(new EmptyCapsuleHost(), { promptContext });
  return { host, asked };
}

Deno.test("ManagementRouter answers get_prompt_context in the asker's view", async (t) => {
  const { host, asked } = scopedHost();
  const { bus, router, audited, ask } = setup(host);
  type Answer = {
    kind: "json";
    value: { ok: boolean; result: { context: { capsule: string }[]; skills: unknown[] } };
  };
  try {
    await t.step("the operator sees the operator's context and skills, bounded", async () => {
      const a = (await ask("get_prompt_context")) as Answer;
      assert.deepEqual(a.value, {
        ok: true,
        result: {
          context: [{ capsule: "notes", file: "static/context.md", text: "Operator notes." }],
          skills: [{
            capsule: "notes",
            name: "research",
            description: "When researching",
            file: "static/skills/research.md",
            text: "Use sources.",
          }],
          cut: [],
          cut_total: 0,
          limit_bytes: 65536,
        },
      });
      assert.deepEqual(asked.at(-1), { principal: "default" });
      assert.deepEqual(audited, [], "read-only: not audited");
    });

    await t.step(
      "the message's principal chooses the view, and workspace_id is passed",
      async () => {
        const a = (await ask("get_prompt_context", { workspace_id: "w-1" }, "bob")) as Answer;
        assert.deepEqual(a.value.result.context.map((c) => c.capsule), ["notes", "bob-notes"]);
        assert.deepEqual(asked.at(-1), { principal: "bob", workspaceId: "w-1" });
        const carol = (await ask("get_prompt_context", {}, "carol")) as Answer;
        assert.deepEqual(carol.value.result.context.map((c) => c.capsule), ["notes"]);
      },
    );

    await t.step("a malformed workspace_id is INVALID_PARAMS", async () => {
      const a = (await ask("get_prompt_context", { workspace_id: "../x" })) as {
        value: { ok: false; error: { code: string; data: { field: string } } };
      };
      assert.equal(a.value.error.code, "INVALID_PARAMS");
      assert.equal(a.value.error.data.field, "workspace_id");
    });

    await t.step("unlimited: many requests in a row are all answered", async () => {
      for (let i = 0; i < 20; i++) {
        assert.equal(((await ask("get_prompt_context")) as Answer).value.ok, true);
      }
    });

    await t.step("names parse in either form", () => {
      assert.equal(managementRequest("GetPromptContext"), "GetPromptContext");
      assert.equal(managementRequest("get_prompt_context"), "GetPromptContext");
    });
  } finally {
    router.stop();
    bus.close();
  }
});
