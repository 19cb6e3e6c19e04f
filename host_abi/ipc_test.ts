import assert from "node:assert/strict";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import {
  BusCode,
  BusError,
  type BusMessage,
  EventBus,
  ManualTimers,
} from "../kernel/events/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { encodeFields, encodeU32, type FieldInput, RequestReader } from "./encoding.ts";
import { HandleTable } from "./handle_table.ts";
import type { HostCallContext, HostFunctionRow, HostResult } from "./host_function.ts";
import { capsuleBus, createHostServices, provide, scopedKv } from "./host_services.ts";
import {
  callDeadline,
  HOST_TIMERS,
  hostErrorFromBus,
  ipcPoll,
  ipcPublish,
  ipcRecv,
  ipcSubscribe,
  ipcUnsubscribe,
  MAX_RECV_TIMEOUT_MS,
  messageEnvelope,
  optionalObject,
} from "./ipc.ts";
import { DEFAULT_HOST_LIMITS } from "./limits.ts";
import { HostCallError, HostStatus } from "./status.ts";

const clock = new ManualClock();

function ctx(
  bus: EventBus,
  options: {
    timers: ManualTimers;
    signal?: AbortSignal;
    principal?: string;
    handles?: HandleTable;
  },
): HostCallContext {
  const principal = options.principal ?? "alice";
  const capsule = "chat";
  return {
    principal,
    capsule,
    manifest: parseManifest(`[package]\nname = "chat"\nversion = "0.1.0"\n`, { file: "x" }),
    exportName: "handle",
    session: { id: "s1", workspaceId: "w1", workspaceRoot: "/w" },
    signal: options.signal ?? new AbortController().signal,
    clock,
    limits: DEFAULT_HOST_LIMITS,
    services: createHostServices({
      vfs: () => Promise.reject(new Error("no vfs")),
      kv: scopedKv(new MemoryStore(), principal, capsule),
      bus: capsuleBus(bus, { principal, capsule }),
      security: { authorize: () => Promise.reject(new Error("no security")) },
      audit: { append: () => Promise.resolve() },
      handles: options.handles ?? new HandleTable(),
      extensions: [provide(HOST_TIMERS, options.timers)],
    }),
  };
}

async function run(
  row: HostFunctionRow,
  fields: readonly FieldInput[],
  call: HostCallContext,
): Promise<HostResult> {
  const args = await row.parse(new RequestReader(encodeFields(fields)), call);
  return row.run(args, call);
}

/** Lets pending promise callbacks run (no timers involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

const status = (s: HostStatus) => (e: unknown) => e instanceof HostCallError && e.status === s;
const text = (r: HostResult) =>
  typeof r === "string" ? r : new TextDecoder().decode(r as Uint8Array);
const handleOf = (r: HostResult) => new DataView((r as Uint8Array).buffer).getUint32(0, true);

function fixture() {
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const bus = new EventBus({ clock, timers });
  bus.setAcl("chat", { publish: ["chat.*"], subscribe: ["chat.*"] });
  return { bus, timers };
}

Deno.test("messageEnvelope() carries JSON as is and bytes as base64, omitting unset fields", () => {
  const base: Omit<BusMessage, "payload" | "size"> = {
    id: "b-1",
    topic: "a.b",
    principal: "alice" as BusMessage["principal"],
    source: { kind: "capsule", name: "chat" },
    timestamp: 5,
    end_of_stream: false,
  };
  assert.deepEqual(
    messageEnvelope({ ...base, payload: { kind: "json", value: { x: 1 } }, size: 7 }),
    {
      id: "b-1",
      topic: "a.b",
      principal: "alice",
      source: "capsule:chat",
      timestamp: 5,
      end_of_stream: false,
      payload_kind: "json",
      payload: { x: 1 },
    },
  );
  const bytes = messageEnvelope({
    ...base,
    request_id: "r",
    reply_to: "a.c",
    payload: { kind: "bytes", bytes: new Uint8Array([104, 105]) },
    size: 2,
  });
  assert.equal(bytes.payload, "aGk=");
  assert.equal(bytes.payload_kind, "bytes");
  assert.equal(bytes.request_id, "r");
  assert.equal(bytes.reply_to, "a.c");
});

Deno.test("hostErrorFromBus() maps bus codes to guest statuses and passes others on", () => {
  const cases: [string, HostStatus, unknown?][] = [
    [BusCode.BUS_ACL_DENIED, HostStatus.DENIED],
    [BusCode.BUS_DENIED, HostStatus.DENIED],
    [BusCode.BUS_INVALID_PAYLOAD, HostStatus.LIMIT_EXCEEDED, { reason: "too large" }],
    [BusCode.BUS_INVALID_PAYLOAD, HostStatus.INVALID_ARGUMENT, { reason: "not JSON" }],
    [BusCode.BUS_REQUEST_TIMEOUT, HostStatus.TIMEOUT],
    [BusCode.BUS_SUBSCRIPTION_CLOSED, HostStatus.CLOSED],
    [BusCode.BUS_CLOSED, HostStatus.UNAVAILABLE],
    [BusCode.BUS_INVALID_TOPIC, HostStatus.INVALID_ARGUMENT],
  ];
  for (const [code, expected, data] of cases) {
    const mapped = hostErrorFromBus(new BusError(code as BusCode, "m", { data: data as never }));
    assert.ok(mapped instanceof HostCallError, code);
    assert.equal(mapped.status, expected, code);
  }
  const other = new Error("x");
  assert.equal(hostErrorFromBus(other), other);
  const failed = new BusError(BusCode.BUS_INTERCEPTOR_FAILED, "m");
  assert.equal(hostErrorFromBus(failed), failed);
});

Deno.test("callDeadline() aborts on its timer or the call's signal and says which", async (t) => {
  const { bus, timers } = fixture();
  await t.step("time out", () => {
    const d = callDeadline(ctx(bus, { timers }), 100);
    assert.equal(timers.pending, 1);
    timers.advance(100);
    assert.ok(d.signal.aborted && d.timedOut);
    const e = d.explain(new Error("x"), "a thing");
    assert.ok(e instanceof HostCallError && e.status === HostStatus.TIMEOUT);
    assert.match((e as Error).message, /a thing after 100 ms/);
    d.clear();
  });
  await t.step("the invocation ended", () => {
    const stop = new AbortController();
    const d = callDeadline(ctx(bus, { timers, signal: stop.signal }), 100);
    stop.abort();
    assert.ok(d.signal.aborted && !d.timedOut);
    const e = d.explain(new Error("x"), "a thing");
    assert.ok(e instanceof HostCallError && e.status === HostStatus.CANCELLED);
    d.clear();
    assert.equal(timers.pending, 0);
  });
  await t.step("neither: the error is passed on", () => {
    const d = callDeadline(ctx(bus, { timers }), 100);
    const err = new Error("x");
    assert.equal(d.explain(err, "a thing"), err);
    d.clear();
    assert.equal(timers.pending, 0);
  });
});

Deno.test("optionalObject() reads an absent or empty trailing field as {}", () => {
  const read = (fields: FieldInput[]) => {
    const r = new RequestReader(encodeFields(fields));
    r.string("first");
    return optionalObject(r, "options");
  };
  assert.deepEqual(read(["a"]), {});
  assert.deepEqual(read(["a", ""]), {});
  assert.deepEqual(read(["a", '{"x":1}']), { x: 1 });
  assert.throws(() => read(["a", "[1]"]), status(HostStatus.INVALID_ARGUMENT));
  assert.throws(() => read(["a", "{"]), status(HostStatus.INVALID_ARGUMENT));
});

Deno.test("ipc rows: publish, subscribe, recv, poll, unsubscribe without an engine", async (t) => {
  const { bus, timers } = fixture();
  const handles = new HandleTable();
  const call = ctx(bus, { timers, handles });

  await t.step("ipcPublish.gate() names the topic; ipcSubscribe.gate() the pattern", async () => {
    const p = await ipcPublish.parse(new RequestReader(encodeFields(["chat.a", "1"])), call);
    assert.deepEqual(await ipcPublish.gate(p, call), { capability: "publish", target: "chat.a" });
    const s = await ipcSubscribe.parse(new RequestReader(encodeFields(["chat.*"])), call);
    assert.deepEqual(await ipcSubscribe.gate(s, call), {
      capability: "subscribe",
      target: "chat.*",
    });
  });

  await t.step("ipcRecv waits, then answers the envelope", async () => {
    const h = handleOf(await run(ipcSubscribe, ["chat.*"], call));
    const recv = run(ipcRecv, [encodeU32(h), encodeU32(0)], call);
    await settle();
    assert.equal(timers.pending, 1, "a deadline of the longest wait");
    await run(ipcPublish, ["chat.x", '{"n":1}'], ctx(bus, { timers, principal: "bob" }));
    const env = JSON.parse(text(await recv));
    assert.deepEqual([env.principal, env.payload], ["bob", { n: 1 }]);
    assert.equal(timers.pending, 0);
    await run(ipcUnsubscribe, [encodeU32(h)], call);
    assert.equal(handles.count("subscription"), 0);
  });

  await t.step("ipcRecv answers CLOSED when the subscription is closed under it", async () => {
    const h = handleOf(await run(ipcSubscribe, ["chat.*"], call));
    const recv = run(ipcRecv, [encodeU32(h), encodeU32(10)], call);
    await settle();
    bus.setAcl("chat", { publish: ["chat.*"], subscribe: [] });
    await assert.rejects(recv, status(HostStatus.CLOSED));
    await assert.rejects(run(ipcPoll, [encodeU32(h)], call), status(HostStatus.CLOSED));
    await run(ipcUnsubscribe, [encodeU32(h)], call);
    bus.setAcl("chat", { publish: ["chat.*"], subscribe: ["chat.*"] });
  });

  await t.step("the bus's own ACL backs the gate: DENIED from the bus too", async () => {
    await assert.rejects(run(ipcPublish, ["other.x", "1"], call), status(HostStatus.DENIED));
    await assert.rejects(run(ipcSubscribe, ["other.*"], call), status(HostStatus.DENIED));
  });

  await t.step("parse refuses what it cannot carry", async () => {
    await assert.rejects(
      run(ipcRecv, [encodeU32(1), encodeU32(MAX_RECV_TIMEOUT_MS + 1)], call),
      status(HostStatus.INVALID_ARGUMENT),
    );
    await assert.rejects(
      run(ipcPublish, ["chat.a", "1", '{"format":"xml"}'], call),
      status(HostStatus.INVALID_ARGUMENT),
    );
    await assert.rejects(
      run(ipcPublish, ["chat.a", "1", '{"reply_to":"a..b"}'], call),
      status(HostStatus.INVALID_ARGUMENT),
    );
    await assert.rejects(
      run(ipcPublish, ["chat.a", new Uint8Array([0xff])], call),
      status(HostStatus.INVALID_ARGUMENT),
    );
    await assert.rejects(
      run(ipcSubscribe, ["chat.*", '{"scope":"everyone"}'], call),
      status(HostStatus.INVALID_ARGUMENT),
    );
  });

  await t.step("ipcPublish answers recipients and the capsule handlers that ran", async () => {
    const nobody = JSON.parse(text(await run(ipcPublish, ["chat.nobody", "1"], call)));
    assert.deepEqual(
      { outcome: nobody.outcome, recipients: nobody.recipients, handlers: nobody.handlers },
      { outcome: "delivered", recipients: 0, handlers: 0 },
    );
    bus.setAcl("store", { publish: [], subscribe: ["chat.*"] });
    const handler = bus.intercept("chat.handled", () => ({ action: "continue" }), {
      ctx: { principal: principalId("alice"), source: { kind: "capsule", name: "store" } },
    });
    const guard = bus.intercept("chat.handled", () => ({ action: "continue" }), { priority: 1 });
    try {
      const handled = JSON.parse(text(await run(ipcPublish, ["chat.handled", "1"], call)));
      assert.deepEqual([handled.recipients, handled.handlers], [0, 1], "kernel guards not counted");
    } finally {
      handler.close();
      guard.close();
      bus.removeAcl("store");
    }
  });

  await t.step("ipcPublish skip_own_interceptors leaves the caller's own binding out", async () => {
    const seen: string[] = [];
    const own = bus.intercept("chat.own", () => {
      seen.push("own");
      return { action: "continue" };
    }, { ctx: { principal: principalId("alice"), source: { kind: "capsule", name: "chat" } } });
    try {
      await run(ipcPublish, ["chat.own", "1"], call);
      await run(ipcPublish, ["chat.own", "1", '{"skip_own_interceptors":true}'], call);
      assert.deepEqual(seen, ["own"]);
    } finally {
      own.close();
    }
  });

  await t.step("a payload over the bus limit is LIMIT_EXCEEDED", async () => {
    const small = new EventBus({ clock, timers, maxPayloadBytes: 4 });
    small.setAcl("chat", { publish: ["chat.*"], subscribe: [] });
    await assert.rejects(
      run(ipcPublish, ["chat.a", '"too long"'], ctx(small, { timers })),
      status(HostStatus.LIMIT_EXCEEDED),
    );
  });
  bus.close();
});
