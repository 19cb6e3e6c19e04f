import assert from "node:assert/strict";
import type { AuditEntry } from "../audit/mod.ts";
import { type BusMessage, EventBus, type PublishResult } from "../events/mod.ts";
import { DEFAULT_PRINCIPAL } from "../identity/mod.ts";
import type { ApprovalAnswer, ApprovalRequest } from "./approval.ts";
import type { Authorization } from "./authorization.ts";
import { type Rig, rig, type TestConfig, until, who } from "./_test_helpers.ts";
import {
  installToolGuard,
  TOOL_GUARD_PRIORITY,
  type ToolCallScope,
  type ToolGuard,
  type ToolGuardOptions,
} from "./tool_guard.ts";

const quiet = { warn() {}, error() {} };
const ctx = { principal: DEFAULT_PRINCIPAL, source: { kind: "kernel" as const, name: "test" } };
const CALL = { arguments: { path: "notes.md" }, call_id: "c1", session: who.session };

async function setup(
  overrides: TestConfig = {},
  options: Partial<ToolGuardOptions> = {},
): Promise<{ r: Rig; bus: EventBus; guard: ToolGuard; seen: BusMessage[] }> {
  const r = await rig(overrides);
  const bus = new EventBus({ clock: r.clock, timers: r.timers, logger: quiet });
  const guard = installToolGuard(bus, { security: r.security, ...options });
  const seen: BusMessage[] = [];
  bus.listen("tool.v1.execute.*", (msg) => seen.push(msg), { name: "test:tools" });
  return { r, bus, guard, seen };
}

function call(bus: EventBus, tool: string, body: Record<string, unknown> = CALL) {
  return bus.publish(`tool.v1.execute.${tool}`, { ...body, workspace_id: who.workspace }, {
    ctx,
    request_id: "r1",
  });
}

/** Attaches an interactive frontend answering every request with `answer`; records requests. */
function human(r: Rig, answer: ApprovalAnswer): ApprovalRequest[] {
  const asked: ApprovalRequest[] = [];
  const handle = r.broker.attach(who.principal, who.session, {
    id: "tui",
    interactive: true,
    onRequest: (req) => {
      asked.push(req);
      handle.respond(req.id, { answer });
    },
  });
  return asked;
}

/** The decisions (not the deferred entries) on `tool.execute`, oldest first. */
async function decisions(r: Rig): Promise<AuditEntry[]> {
  const all = await r.audit.list(who.principal, { limit: 1000 });
  return all.filter((a) => a.action === "tool.execute" && a.decision !== "deferred")
    .sort((a, b) => a.seq - b.seq);
}

function row(a: AuditEntry): string[] {
  return [a.decision, a.resource, a.layer, a.decider, a.rule, a.session];
}

function denied(result: PublishResult): string {
  assert.equal(result.outcome, "denied");
  assert.equal(result.by, "kernel:tool_guard");
  return result.reason;
}

Deno.test("installToolGuard() applies the mode table's tool row to every tool call", async (t) => {
  await t.step("safe asks: the human's Allow Once lets the call through, audited", async () => {
    const { r, bus, seen } = await setup({ mode: "safe" });
    const asked = human(r, "allow_once");
    const result = await call(bus, "read_file");
    assert.equal(result.outcome, "delivered");
    assert.equal(seen.length, 1);
    assert.deepEqual(asked.map((q) => [q.kind, q.resource, q.summary, q.workspace]), [
      ["tool.execute", "tool:read_file", "call tool read_file", who.workspace],
    ]);
    assert.deepEqual((await decisions(r)).map(row), [
      ["allowed", "tool:read_file", "approval", "human", asked[0].id, who.session],
    ]);
  });

  await t.step("safe, headless: denied at once with the reason, nothing delivered", async () => {
    const { r, bus, seen } = await setup({ mode: "safe" });
    r.broker.attach(who.principal, who.session, { interactive: false });
    const reason = denied(await call(bus, "read_file"));
    assert.match(reason, /^No human can be asked to allow call tool read_file: /);
    assert.equal(seen.length, 0);
    assert.deepEqual((await decisions(r)).map(row), [
      ["denied", "tool:read_file", "approval", "headless", "safe/tool", who.session],
    ]);
  });

  await t.step("safe: the human's Deny refuses the call with the human's reason", async () => {
    const { r, bus, seen } = await setup({ mode: "safe" });
    human(r, "deny");
    assert.match(denied(await call(bus, "write_file")), /^Denied by the human: /);
    assert.equal(seen.length, 0);
    assert.deepEqual((await decisions(r)).map((a) => [a.decision, a.decider]), [
      ["denied", "human"],
    ]);
  });

  await t.step("safe: an Allow Session answers the next calls of the session", async () => {
    const { r, bus, seen } = await setup({ mode: "safe" });
    const asked = human(r, "allow_session");
    assert.equal((await call(bus, "read_file")).outcome, "delivered");
    assert.equal((await call(bus, "read_file")).outcome, "delivered");
    assert.equal(asked.length, 1);
    assert.equal(seen.length, 2);
    assert.deepEqual((await decisions(r)).map((a) => a.layer), ["approval", "allowance"]);
  });

  for (const mode of ["guided", "autonomous"] as const) {
    await t.step(`${mode} allows by mode, with one audit entry per call`, async () => {
      const { r, bus, seen } = await setup({ mode });
      assert.equal((await call(bus, "read_file")).outcome, "delivered");
      assert.equal((await call(bus, "write_file")).outcome, "delivered");
      assert.equal(seen.length, 2);
      assert.deepEqual((await decisions(r)).map(row), [
        ["allowed", "tool:read_file", "mode", "mode", `${mode}/tool`, who.session],
        ["allowed", "tool:write_file", "mode", "mode", `${mode}/tool`, who.session],
      ]);
    });
  }
});

Deno.test("installToolGuard() binds tool.v1.execute.* strictly: results and progress pass", async () => {
  const { r, bus, seen } = await setup({ mode: "safe" });
  r.broker.attach(who.principal, who.session, { interactive: false });
  for (const topic of ["tool.v1.execute.read_file.result", "tool.v1.execute.fs__x.progress"]) {
    const result = await bus.publish(topic, { request_id: "r1", content: "x" }, { ctx });
    assert.equal(result.outcome, "delivered", topic);
  }
  assert.equal(seen.length, 2);
  assert.deepEqual(await decisions(r), []);
});

Deno.test("installToolGuard() reads the scope from the message", async (t) => {
  await t.step("principal, session and workspace_id reach the action", async () => {
    const { r, bus } = await setup({ mode: "guided" });
    await call(bus, "read_file", { ...CALL, session: "s-9" });
    const [entry] = await decisions(r);
    assert.equal(entry.principal, DEFAULT_PRINCIPAL);
    assert.equal(entry.session, "s-9");
    assert.equal(JSON.parse(entry.details).workspace, who.workspace);
    assert.equal(JSON.parse(entry.details).tool, "read_file");
  });

  await t.step("a call naming no session or workspace is decided as `none`", async () => {
    const { r, bus } = await setup({ mode: "guided" });
    await bus.publish("tool.v1.execute.read_file", { arguments: {} }, { ctx });
    const [entry] = await decisions(r);
    assert.equal(entry.session, "none");
    assert.equal(JSON.parse(entry.details).workspace, "none");
  });

  await t.step("a malformed session is denied, naming the field, nothing delivered", async () => {
    const { bus, seen } = await setup({ mode: "autonomous" });
    const reason = denied(await call(bus, "read_file", { ...CALL, session: "a b" }));
    assert.match(reason, /^Tool call "read_file" refused: .*"session"/);
    assert.equal(seen.length, 0);
  });
});

Deno.test("installToolGuard() lets through, undecided, only what selfAuthorizing names", async () => {
  const scopes: ToolCallScope[] = [];
  const { r, bus, seen } = await setup({ mode: "safe" }, {
    selfAuthorizing: (scope) => {
      scopes.push(scope);
      return scope.tool === "fs__read_file";
    },
  });
  r.broker.attach(who.principal, who.session, { interactive: false });
  assert.equal((await call(bus, "fs__read_file")).outcome, "delivered");
  denied(await call(bus, "read_file"));
  assert.deepEqual(scopes[0], {
    tool: "fs__read_file",
    principal: DEFAULT_PRINCIPAL,
    session: who.session,
    workspace: who.workspace,
  });
  assert.equal(seen.length, 1);
  assert.deepEqual((await decisions(r)).map((a) => a.resource), ["tool:read_file"]);
});

Deno.test("installToolGuard() fails closed when selfAuthorizing throws", async () => {
  const { bus, seen } = await setup({ mode: "autonomous" }, {
    selfAuthorizing: () => {
      throw new Error("boom");
    },
  });
  assert.equal(denied(await call(bus, "read_file")), 'Tool call "read_file" refused: boom');
  assert.equal(seen.length, 0);
});

Deno.test("installToolGuard() runs before every capsule handler priority", async () => {
  assert.ok(TOOL_GUARD_PRIORITY < 0);
  const { r, bus } = await setup({ mode: "safe" });
  r.broker.attach(who.principal, who.session, { interactive: false });
  let reached = 0;
  bus.intercept("tool.v1.execute.*", () => {
    reached++;
    return { action: "final", reply: { content: "served" } };
  }, { priority: 0, name: "test:priority_0" });
  denied(await call(bus, "read_file"));
  assert.equal(reached, 0);
});

Deno.test("installToolGuard() denies and cancels the approval when its time runs out", async () => {
  const r = await rig({ mode: "safe", timeout_secs: 600 });
  const bus = new EventBus({ clock: r.clock, timers: r.timers, logger: quiet });
  let decided: Promise<Authorization> | undefined;
  installToolGuard(bus, {
    security: {
      authorize: (action, options) => decided = r.security.authorize(action, options),
    },
    timeoutMs: 1_000,
  });
  const pending = call(bus, "read_file"); // no frontend attached: queued
  await until(() => r.broker.pending().length === 1);
  r.timers.advance(1_000);
  assert.match(denied(await pending), /^Interceptor "kernel:tool_guard" failed: timed out/);
  const auth = await decided!;
  assert.deepEqual([auth.allowed, auth.decider, auth.cancelled], [false, "cancelled", true]);
  assert.equal(r.broker.pending().length, 0);
  assert.deepEqual((await decisions(r)).map((a) => [a.decision, a.decider]), [
    ["denied", "cancelled"],
  ]);
});

Deno.test("installToolGuard() close() unbinds the guard", async () => {
  const { r, bus, guard, seen } = await setup({ mode: "safe" });
  r.broker.attach(who.principal, who.session, { interactive: false });
  guard.close();
  assert.equal(guard.closed, true);
  assert.equal((await call(bus, "read_file")).outcome, "delivered");
  assert.equal(seen.length, 1);
  assert.deepEqual(await decisions(r), []);
});
