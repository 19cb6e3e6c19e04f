import assert from "node:assert/strict";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { EventBus, type JsonValue } from "../kernel/events/mod.ts";
import { encodeFields, encodeU32, type FieldInput, RequestReader } from "./encoding.ts";
import { HandleTable } from "./handle_table.ts";
import { getInterceptorHandles, triggerHook } from "./hooks.ts";
import type { HostCallContext, HostFunctionRow } from "./host_function.ts";
import { capsuleBus } from "./host_services.ts";
import { ipcUnsubscribe } from "./ipc.ts";
import { HostCallError, HostStatus } from "./status.ts";

const status = (s: HostStatus) => (e: unknown) => e instanceof HostCallError && e.status === s;

function fixture() {
  const bus = new EventBus();
  bus.setAcl("hk", { publish: ["hooks.v1.*"], subscribe: ["chat.*"] });
  const handles = new HandleTable();
  const call = {
    principal: "alice",
    capsule: "hk",
    manifest: parseManifest(
      `[package]
name = "hk"
version = "0.1.0"
[wasm]
[publish]
"hooks.v1.*" = { wit = "opaque" }
[subscribe]
"chat.in" = { wit = "opaque", handler = "on_in", priority = 20 }
"chat.*" = { wit = "opaque" }
[[tool]]
name = "grep"
description = "Searches"
`,
      { file: "hk/Capsule.toml" },
    ),
    services: { bus: capsuleBus(bus, { principal: "alice", capsule: "hk" }), handles },
  } as unknown as HostCallContext;
  return { bus, handles, call };
}

async function call(row: HostFunctionRow, fields: FieldInput[], ctx: HostCallContext) {
  const args = await row.parse(new RequestReader(encodeFields(fields)), ctx);
  const body = await row.run(args, ctx);
  return JSON.parse(body as string);
}

Deno.test("trigger_hook answers continue, final or deny from the hook's chain", async () => {
  const { bus, call: ctx } = fixture();
  assert.deepEqual(await call(triggerHook, ["plain", "1"], ctx), {
    outcome: "continue",
    payload_kind: "json",
    payload: 1,
    recipients: 0,
  });
  bus.intercept(
    "hooks.v1.edit",
    (m) => ({
      action: "continue",
      payload: [(m.payload as { value: JsonValue }).value, "more"],
    }),
    { guard: false },
  );
  bus.intercept("hooks.v1.edit", (m) => ({ action: "continue", payload: [m.payload.kind] }), {
    priority: 200,
  });
  assert.deepEqual((await call(triggerHook, ["edit", '"a"'], ctx)).payload, ["json"]);
  bus.intercept("hooks.v1.answer", () => ({ action: "final", reply: { ok: true } }), {
    name: "answerer",
    guard: false,
  });
  const final = await call(triggerHook, ["answer", "{}"], ctx);
  assert.equal(final.outcome, "final");
  assert.equal(final.by, "answerer");
  assert.deepEqual(final.reply.payload, { ok: true });
  bus.intercept("hooks.v1.veto", () => ({ action: "deny", reason: "no" }), { name: "v" });
  assert.deepEqual(await call(triggerHook, ["veto", "{}"], ctx), {
    outcome: "deny",
    by: "v",
    reason: "no",
  });
});

Deno.test("trigger_hook gates on the hook topic and refuses bad names and JSON", async () => {
  const { call: ctx } = fixture();
  const args = await triggerHook.parse(new RequestReader(encodeFields(["a.b", "{}"])), ctx);
  assert.deepEqual(await triggerHook.gate(args, ctx), {
    capability: "publish",
    target: "hooks.v1.a.b",
  });
  for (const fields of [["", "{}"], ["a..b", "{}"], ["a*", "{}"], ["ok", "{"]]) {
    assert.throws(
      () => triggerHook.parse(new RequestReader(encodeFields(fields)), ctx),
      status(HostStatus.INVALID_ARGUMENT),
      fields[0],
    );
  }
});

Deno.test("get_interceptor_handles answers bindings and opens each subscription once", async () => {
  const { bus, handles, call: ctx } = fixture();
  const bindings = await call(getInterceptorHandles, [], ctx);
  assert.deepEqual(bindings, [
    { topic: "chat.in", handler: "on_in", priority: 20, from: "subscribe" },
    {
      topic: "tool.v1.execute.grep",
      handler: "tool_grep",
      priority: 100,
      from: "tool",
      tool: "grep",
    },
  ]);
  assert.equal(handles.count("subscription"), 0);
  bus.setAcl("hk", { publish: ["hooks.v1.*"], subscribe: ["chat.*", "tool.v1.execute.grep"] });
  const first = await call(getInterceptorHandles, ['{"subscribe":true}'], ctx);
  const second = await call(getInterceptorHandles, ['{"subscribe":true}'], ctx);
  assert.deepEqual(first.map((b: { handle: number }) => b.handle), [1, 2]);
  assert.deepEqual(second, first);
  await ipcUnsubscribe.run({ handle: 1 }, ctx);
  const third = await call(getInterceptorHandles, ['{"subscribe":true}'], ctx);
  assert.deepEqual(third.map((b: { handle: number }) => b.handle), [3, 2], "a closed one reopens");
  assert.ok(encodeU32(1));
  assert.throws(
    () => getInterceptorHandles.parse(new RequestReader(encodeFields(['{"subscribe":1}'])), ctx),
    status(HostStatus.INVALID_ARGUMENT),
  );
});
