import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import {
  BusCode,
  BusError,
  type BusMessage,
  EventBus,
  ManualTimers,
  REPLY_TOPIC_PREFIX,
  StormMonitor,
} from "./mod.ts";
import { principalId } from "../identity/mod.ts";
import { ctxOf, MemoryLogger } from "./_test_helpers.ts";

function isBusError(code: string, re?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof BusError, `expected a BusError, got ${err}`);
    assert.equal(err.code, code);
    if (re !== undefined) assert.match(err.message, re);
    return true;
  };
}

Deno.test("EventBus.publish() stamps the envelope from the kernel's context", async (t) => {
  const clock = new ManualClock(1_000);
  const bus = new EventBus({ clock, bootId: "boot" });
  const seen: BusMessage[] = [];
  bus.listen("agent.v1.*", (m) => seen.push(m));

  await t.step("principal, source, timestamp, id, size and flags", async () => {
    const ctx = ctxOf("alice", { kind: "capsule", name: "orchestrator" });
    bus.setAcl("orchestrator", { publish: ["agent.v1.*"], subscribe: [] });
    const result = await bus.publish("agent.v1.response", { text: "héllo", principal: "mallory" }, {
      ctx,
      request_id: "r1",
      reply_to: "agent.v1.reply.r1",
    });
    assert.equal(result.outcome, "delivered");
    const msg = seen[0];
    assert.equal(result.message, msg);
    assert.equal(msg.id, "boot-0");
    assert.equal(msg.topic, "agent.v1.response");
    assert.equal(msg.principal, "alice", "the principal comes from the context, not the payload");
    assert.deepEqual(msg.source, { kind: "capsule", name: "orchestrator" });
    assert.equal(msg.timestamp, 1_000);
    assert.equal(
      msg.size,
      new TextEncoder().encode(JSON.stringify(msg.payload.kind === "json" && msg.payload.value))
        .length,
    );
    assert.equal(msg.request_id, "r1");
    assert.equal(msg.reply_to, "agent.v1.reply.r1");
    assert.equal(msg.end_of_stream, false);
  });

  await t.step("bytes payloads and stream terminators", async () => {
    clock.advance(5);
    const bytes = new Uint8Array([1, 2, 3]);
    await bus.publish("agent.v1.stream.delta", bytes, { ctx: ctxOf("bob"), end_of_stream: true });
    const msg = seen[1];
    assert.deepEqual(msg.payload, { kind: "bytes", bytes });
    assert.equal(msg.size, 3);
    assert.equal(msg.end_of_stream, true);
    assert.equal(msg.timestamp, 1_005);
    assert.equal(msg.id, "boot-1");
  });

  await t.step("refuses bad topics, reply topics and payloads", async () => {
    const ctx = ctxOf("bob");
    await assert.rejects(
      bus.publish("agent.v1.*", 1, { ctx }),
      isBusError(BusCode.BUS_INVALID_TOPIC, /Invalid topic "agent\.v1\.\*"/),
    );
    await assert.rejects(
      bus.publish("agent..x", 1, { ctx }),
      isBusError(BusCode.BUS_INVALID_TOPIC, /segment 2 is empty/),
    );
    await assert.rejects(
      bus.publish("agent.v1.x", 1, { ctx, reply_to: "bad topic" }),
      isBusError(BusCode.BUS_INVALID_TOPIC),
    );
    await assert.rejects(
      bus.publish("agent.v1.x", 10n as unknown as number, { ctx }),
      isBusError(BusCode.BUS_INVALID_PAYLOAD, /not JSON-serialisable/),
    );
    await assert.rejects(
      bus.publish("agent.v1.x", (() => 1) as unknown as number, { ctx }),
      isBusError(BusCode.BUS_INVALID_PAYLOAD, /not JSON-serialisable: no JSON text/),
    );
    const small = new EventBus({ maxPayloadBytes: 8 });
    await assert.rejects(
      small.publish("agent.v1.x", "0123456789", { ctx }),
      isBusError(BusCode.BUS_INVALID_PAYLOAD, /12 bytes, the limit is 8/),
    );
    await assert.rejects(
      small.publish("agent.v1.x", new Uint8Array(9), { ctx }),
      isBusError(BusCode.BUS_INVALID_PAYLOAD, /9 bytes, the limit is 8/),
    );
    assert.equal(seen.length, 2, "nothing refused was delivered");
  });
});

Deno.test("EventBus.listen() delivers synchronously and survives a throwing listener", async () => {
  const logger = new MemoryLogger();
  const bus = new EventBus({ logger });
  const order: string[] = [];
  bus.listen("a.*", () => order.push("subtree"));
  bus.listen("a.b", () => {
    throw new Error("boom");
  }, { name: "bad" });
  const exact = bus.listen("a.b", () => order.push("exact"));
  bus.listen("a.*.c", () => order.push("never"));
  const p = bus.publish("a.b", null, { ctx: ctxOf("x") });
  assert.deepEqual(order, ["subtree", "exact"], "listeners ran before publish() returned");
  assert.equal((await p).outcome, "delivered");
  assert.equal(bus.stats().counters.listenerErrors, 1);
  assert.match(logger.of("error")[0].message, /Listener "bad" threw on topic "a\.b"/);
  exact.close();
  await bus.publish("a.b", null, { ctx: ctxOf("x") });
  assert.deepEqual(order, ["subtree", "exact", "subtree"]);
});

Deno.test("EventBus routing cache follows subscribe and unsubscribe", async () => {
  const bus = new EventBus({ matchCacheSize: 2 });
  const ctx = ctxOf("x");
  assert.equal((await bus.publish("t.a", 1, { ctx })).outcome, "delivered");
  const sub = bus.subscribe("t.*");
  await bus.publish("t.a", 2, { ctx });
  await bus.publish("t.b", 3, { ctx });
  await bus.publish("t.c", 4, { ctx });
  await bus.publish("t.a", 5, { ctx });
  assert.equal(sub.queuedMessages, 4, "a cached topic sees a new subscription");
  sub.close();
  const r = await bus.publish("t.a", 6, { ctx });
  assert.equal(r.outcome === "delivered" && r.recipients, 0, "and forgets a closed one");
});

Deno.test("EventBus.intercept() runs handlers by priority, then registration order", async () => {
  const bus = new EventBus();
  const calls: string[] = [];
  const mk = (name: string) => () => {
    calls.push(name);
    return { action: "continue" } as const;
  };
  bus.intercept("tool.v1.execute.*", mk("p100-first"));
  bus.intercept("tool.v1.execute.*", mk("p10"), { priority: 10 });
  bus.intercept("tool.v1.*.*", mk("p100-second"));
  bus.intercept("tool.v1.execute.read_file", mk("p50"), { priority: 50, guard: false });
  bus.intercept("tool.v1.*", mk("strict-one-segment"), { priority: 1 });
  bus.intercept("tool.v1.execute.*", mk("p200"), { priority: 200 });
  const result = await bus.publish("tool.v1.execute.read_file", {}, { ctx: ctxOf("x") });
  assert.equal(result.outcome, "delivered");
  assert.deepEqual(calls, ["p10", "p50", "p100-first", "p100-second", "p200"]);
});

Deno.test("EventBus.publish() with skip_own_interceptors skips only the publisher's own", async () => {
  const bus = new EventBus();
  const calls: string[] = [];
  const cache = ctxOf("alice", { kind: "capsule", name: "cache" });
  const llm = ["llm.v1.request.generate.*"];
  for (const name of ["cache", "provider", "orchestrator"]) {
    bus.setAcl(name, { publish: llm, subscribe: llm });
  }
  const mk = (name: string) => () => {
    calls.push(name);
    return { action: "continue" } as const;
  };
  bus.intercept("llm.v1.request.generate.*", mk("cache"), { priority: 50, ctx: cache });
  bus.intercept("llm.v1.request.generate.*", mk("guard"), { priority: 90 });
  bus.intercept("llm.v1.request.generate.*", mk("provider"), {
    ctx: ctxOf("alice", { kind: "capsule", name: "provider" }),
  });
  const skipped = await bus.publish("llm.v1.request.generate.x", {}, {
    ctx: cache,
    skip_own_interceptors: true,
  });
  assert.deepEqual(calls, ["guard", "provider"]);
  assert.equal(skipped.outcome === "delivered" && skipped.handlers, 1);
  calls.length = 0;
  await bus.publish("llm.v1.request.generate.x", {}, { ctx: cache });
  assert.deepEqual(calls, ["cache", "guard", "provider"]);
  calls.length = 0;
  await bus.publish("llm.v1.request.generate.x", {}, {
    ctx: ctxOf("alice", { kind: "capsule", name: "orchestrator" }),
    skip_own_interceptors: true,
  });
  assert.deepEqual(calls, ["cache", "guard", "provider"]);
});

Deno.test("EventBus.intercept() outcomes reach the publisher", async (t) => {
  const ctx = ctxOf("alice");

  await t.step("continue with a payload changes what is delivered", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("llm.*");
    bus.intercept("llm.v1.request", (m) => ({
      action: "continue",
      payload: { ...(m.payload.kind === "json" ? m.payload.value as object : {}), redacted: true },
    }));
    bus.intercept("llm.v1.request", (m) => {
      assert.deepEqual(m.payload, { kind: "json", value: { prompt: "x", redacted: true } });
      return { action: "continue" };
    });
    const result = await bus.publish("llm.v1.request", { prompt: "x" }, { ctx });
    assert.equal(result.outcome, "delivered");
    const msg = sub.poll()!;
    assert.deepEqual(msg.payload, { kind: "json", value: { prompt: "x", redacted: true } });
    assert.equal(msg.size, JSON.stringify({ prompt: "x", redacted: true }).length);
    assert.equal(msg.principal, "alice");
  });

  await t.step("final stops the chain and returns the reply", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("llm.*");
    const later: string[] = [];
    bus.intercept("llm.v1.request", async () => {
      await Promise.resolve();
      return { action: "final", reply: { cached: true } };
    }, { name: "cache", priority: 50, guard: false });
    bus.intercept("llm.v1.request", () => {
      later.push("core");
      return { action: "continue" };
    });
    const result = await bus.publish("llm.v1.request", { prompt: "x" }, {
      ctx,
      request_id: "q",
      reply_to: "llm.v1.reply.q",
    });
    assert.equal(result.outcome, "final");
    assert.equal(result.outcome === "final" && result.by, "cache");
    const reply = result.outcome === "final" ? result.reply! : undefined;
    assert.deepEqual(reply?.payload, { kind: "json", value: { cached: true } });
    assert.equal(reply?.topic, "llm.v1.reply.q");
    assert.equal(reply?.request_id, "q");
    assert.equal(reply?.principal, "alice");
    assert.deepEqual(later, []);
    assert.equal(sub.queuedMessages, 0, "a final message is not delivered");
    assert.equal(bus.stats().counters.final, 1);
  });

  await t.step("deny stops the chain and returns the reason", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("tool.*");
    bus.intercept(
      "tool.v1.execute.*",
      (m) =>
        m.payload.kind === "json" && m.payload.value === "sudo"
          ? { action: "deny", reason: "sudo is blocked by policy" }
          : { action: "continue" },
      { name: "policy", priority: 10 },
    );
    const denied = await bus.publish("tool.v1.execute.shell", "sudo", { ctx });
    assert.equal(denied.outcome, "denied");
    assert.equal(denied.outcome === "denied" && denied.reason, "sudo is blocked by policy");
    assert.equal(denied.outcome === "denied" && denied.by, "policy");
    assert.equal(sub.queuedMessages, 0);
    assert.equal((await bus.publish("tool.v1.execute.shell", "ls", { ctx })).outcome, "delivered");
    assert.equal(bus.stats().counters.denied.interceptor, 1);
  });

  await t.step("a removed interceptor is not called", async () => {
    const bus = new EventBus();
    const ic = bus.intercept("a.b", () => ({ action: "deny", reason: "no" }));
    ic.close();
    assert.equal(ic.closed, true);
    assert.equal((await bus.publish("a.b", 1, { ctx })).outcome, "delivered");
  });
});

Deno.test("EventBus interceptor failures follow the guard policy", async (t) => {
  const ctx = ctxOf("alice");
  const failing = {
    throws: () => {
      throw new Error("kaput");
    },
    rejects: () => Promise.reject(new Error("async kaput")),
    malformed: () => ({ action: "maybe" }) as never,
    "bad payload": () => ({ action: "continue", payload: 1n as unknown as number }) as const,
  };
  for (const [kind, handler] of Object.entries(failing)) {
    await t.step(`a guard that ${kind} fails closed`, async () => {
      const logger = new MemoryLogger();
      const bus = new EventBus({ logger });
      const sub = bus.subscribe("a.*");
      bus.intercept("a.b", handler, { name: "g", priority: 10 });
      const r = await bus.publish("a.b", 1, { ctx });
      assert.equal(r.outcome, "denied");
      assert.match(r.outcome === "denied" ? r.reason : "", /^Interceptor "g" failed: /);
      assert.equal(sub.queuedMessages, 0);
      assert.equal(bus.stats().counters.interceptorFailures, 1);
      assert.match(logger.of("error")[0].message, /fails closed/);
    });
    await t.step(`a non-guard that ${kind} is skipped`, async () => {
      const logger = new MemoryLogger();
      const bus = new EventBus({ logger });
      const sub = bus.subscribe("a.*");
      bus.intercept("a.b", handler, { name: "n" });
      const r = await bus.publish("a.b", 1, { ctx });
      assert.equal(r.outcome, "delivered");
      assert.equal(sub.queuedMessages, 1);
      assert.equal(bus.stats().counters.interceptorFailures, 1);
      assert.match(
        logger.of("error")[0].message,
        /Interceptor "n" failed on topic "a\.b".*fails open/,
      );
    });
  }

  await t.step("a guard flag overrides the priority default", async () => {
    const bus = new EventBus({ logger: new MemoryLogger() });
    const low = bus.intercept("a.b", failing.throws, { priority: 10, guard: false });
    const high = bus.intercept("a.c", failing.throws, { priority: 500, guard: true });
    assert.equal(low.guard, false);
    assert.equal(high.guard, true);
    assert.equal((await bus.publish("a.b", 1, { ctx })).outcome, "delivered");
    assert.equal((await bus.publish("a.c", 1, { ctx })).outcome, "denied");
  });

  await t.step("a timed-out interceptor is aborted and treated per policy", async () => {
    const clock = new ManualClock();
    const timers = new ManualTimers(clock);
    const bus = new EventBus({ clock, timers, logger: new MemoryLogger() });
    let signal: AbortSignal | undefined;
    const hang = (_m: BusMessage, call: { signal: AbortSignal }) => {
      signal = call.signal;
      return new Promise<never>(() => {});
    };
    bus.intercept("slow.guard", hang, { name: "g", priority: 10, timeoutMs: 50 });
    bus.intercept("slow.plain", hang, { name: "p", timeoutMs: 50 });
    const guarded = bus.publish("slow.guard", 1, { ctx });
    await Promise.resolve();
    timers.advance(49);
    assert.equal(signal?.aborted, false);
    timers.advance(1);
    const r = await guarded;
    assert.equal(r.outcome, "denied");
    assert.equal(
      r.outcome === "denied" && r.reason,
      'Interceptor "g" failed: timed out after 50 ms',
    );
    assert.equal(signal?.aborted, true);
    assert.ok(signal?.reason instanceof BusError);
    assert.equal(signal.reason.code, BusCode.BUS_INTERCEPTOR_FAILED);
    const plain = bus.publish("slow.plain", 1, { ctx });
    await Promise.resolve();
    timers.advance(50);
    assert.equal((await plain).outcome, "delivered");
    assert.equal(timers.pending, 0);
  });

  await t.step("an interceptor answering in time clears its timer", async () => {
    const clock = new ManualClock();
    const timers = new ManualTimers(clock);
    const bus = new EventBus({ clock, timers });
    bus.intercept("a.b", async () => {
      await Promise.resolve();
      return { action: "continue" };
    });
    assert.equal((await bus.publish("a.b", 1, { ctx })).outcome, "delivered");
    assert.equal(timers.pending, 0);
  });
});

Deno.test("EventBus.request() correlates replies and times out", async (t) => {
  const alice = ctxOf("alice");

  await t.step("resolves with the first reply on reply_to carrying the request_id", async () => {
    const bus = new EventBus();
    bus.listen("tool.v1.execute.*", (req) => {
      // A responder acting for the request's principal answers twice; the first wins.
      const ctx = { principal: req.principal, source: { kind: "kernel", name: "tool" } } as const;
      bus.publish(req.reply_to!, { n: 1 }, { ctx, request_id: req.request_id });
      bus.publish(req.reply_to!, { n: 2 }, { ctx, request_id: req.request_id });
    });
    const reply = await bus.request("tool.v1.execute.read_file", { path: "x" }, { ctx: alice });
    assert.deepEqual(reply.payload, { kind: "json", value: { n: 1 } });
    assert.match(reply.topic, new RegExp(`^${REPLY_TOPIC_PREFIX.replaceAll(".", "\\.")}\\.`));
    assert.equal(bus.stats().gauges.pendingRequests, 0);
  });

  await t.step("ignores replies of another principal or topic, accepts the kernel's", async () => {
    const bus = new EventBus();
    let req: BusMessage | undefined;
    bus.listen("q.ask", (m) => req = m);
    const pending = bus.request("q.ask", 1, { ctx: alice, reply_to: "q.answer" });
    await Promise.resolve();
    const capsule = (p: string) => ctxOf(p, { kind: "uplink", name: "kernelish" });
    bus.setAcl("kernelish", { publish: ["q.*"], subscribe: [] });
    await bus.publish("q.answer", "forged", {
      ctx: capsule("mallory"),
      request_id: req!.request_id,
    });
    await bus.publish("q.other", "wrong topic", { ctx: alice, request_id: req!.request_id });
    await bus.publish("q.answer", "no id", { ctx: alice });
    await bus.publish("q.answer", "from kernel", {
      ctx: ctxOf("default"),
      request_id: req!.request_id,
    });
    assert.deepEqual((await pending).payload, { kind: "json", value: "from kernel" });
  });

  await t.step("rejects with BUS_REQUEST_TIMEOUT when no reply comes (manual time)", async () => {
    const clock = new ManualClock();
    const timers = new ManualTimers(clock);
    const bus = new EventBus({ clock, timers });
    const pending = bus.request("q.ask", 1, { ctx: alice, timeoutMs: 1_000 });
    timers.advance(999);
    assert.equal(bus.stats().gauges.pendingRequests, 1);
    timers.advance(1);
    await assert.rejects(
      pending,
      isBusError(BusCode.BUS_REQUEST_TIMEOUT, /Request on topic "q\.ask" got no reply in 1000 ms/),
    );
    assert.equal(bus.stats().counters.requestTimeouts, 1);
    assert.equal(bus.stats().gauges.pendingRequests, 0);
  });

  await t.step("rejects with BUS_REQUEST_TIMEOUT on real timers too", async () => {
    const bus = new EventBus();
    await assert.rejects(
      bus.request("q.ask", 1, { ctx: alice, timeoutMs: 20 }),
      isBusError(BusCode.BUS_REQUEST_TIMEOUT),
    );
  });

  await t.step("resolves with a Final reply and rejects on Deny", async () => {
    const clock = new ManualClock();
    const timers = new ManualTimers(clock);
    const bus = new EventBus({ clock, timers });
    bus.intercept("llm.v1.request.*", () => ({ action: "final", reply: "cached" }), {
      name: "cache",
    });
    bus.intercept("tool.v1.execute.*", () => ({ action: "deny", reason: "blocked" }), {
      name: "policy",
      priority: 10,
    });
    bus.intercept("tool.v1.request.*", () => ({ action: "final" }));
    const reply = await bus.request("llm.v1.request.openai", 1, { ctx: alice });
    assert.deepEqual(reply.payload, { kind: "json", value: "cached" });
    assert.equal(reply.principal, "alice");
    const empty = await bus.request("tool.v1.request.describe", 1, { ctx: alice });
    assert.deepEqual(empty.payload, { kind: "json", value: null });
    await assert.rejects(
      bus.request("tool.v1.execute.shell", 1, { ctx: alice }),
      isBusError(BusCode.BUS_DENIED, /denied by "policy": blocked/),
    );
    assert.equal(timers.pending, 0, "settled requests leave no timer behind");
  });

  await t.step("rejects with the abort reason", async () => {
    const clock = new ManualClock();
    const bus = new EventBus({ clock, timers: new ManualTimers(clock) });
    const ac = new AbortController();
    const pending = bus.request("q.ask", 1, { ctx: alice, signal: ac.signal });
    ac.abort(new Error("user left"));
    await assert.rejects(pending, /user left/);
    assert.equal(bus.stats().gauges.pendingRequests, 0);
  });
});

Deno.test("EventBus ACLs refuse capsules outside their lists and audit it", async (t) => {
  const logger = new MemoryLogger();
  const denials: unknown[] = [];
  const bus = new EventBus({ logger, audit: { denied: (e) => void denials.push(e) } });
  const weather = ctxOf("alice", { kind: "capsule", name: "weather" });

  await t.step("a capsule with no lists may do nothing", async () => {
    await assert.rejects(
      bus.publish("tool.v1.execute.weather.result", 1, { ctx: weather }),
      isBusError(
        BusCode.BUS_ACL_DENIED,
        /Capsule "weather" may not publish "tool\.v1\.execute\.weather\.result": not covered by its \[publish\] list/,
      ),
    );
    assert.throws(
      () => bus.subscribe("tool.v1.execute.weather", { ctx: weather }),
      isBusError(BusCode.BUS_ACL_DENIED, /may not subscribe "tool\.v1\.execute\.weather"/),
    );
    assert.deepEqual(denials, [
      {
        principal: "alice",
        capsule: "weather",
        source: { kind: "capsule", name: "weather" },
        topic: "tool.v1.execute.weather.result",
        op: "publish",
      },
      {
        principal: "alice",
        capsule: "weather",
        source: { kind: "capsule", name: "weather" },
        topic: "tool.v1.execute.weather",
        op: "subscribe",
      },
    ]);
  });

  await t.step("allowed patterns, subtree and coverage", async () => {
    bus.setAcl("weather", {
      publish: ["tool.v1.execute.weather.result", "agent.v1.*"],
      subscribe: ["tool.v1.execute.weather", "tool.v1.request.*"],
    });
    assert.equal(
      (await bus.publish("tool.v1.execute.weather.result", 1, { ctx: weather })).outcome,
      "delivered",
    );
    await bus.publish("agent.v1.stream.delta", 1, { ctx: weather });
    await assert.rejects(bus.publish("agent.v1", 1, { ctx: weather }), BusError);
    await assert.rejects(bus.publish("tool.v1.execute.shell", 1, { ctx: weather }), BusError);
    bus.subscribe("tool.v1.execute.weather", { ctx: weather }).close();
    bus.subscribe("tool.v1.request.*", { ctx: weather }).close();
    bus.subscribe("tool.v1.request.describe", { ctx: weather }).close();
    assert.throws(() => bus.subscribe("tool.v1.*", { ctx: weather }), BusError);
    bus.intercept("tool.v1.execute.weather", () => ({ action: "continue" }), { ctx: weather })
      .close();
    bus.intercept("tool.v1.request.*", () => ({ action: "continue" }), { ctx: weather }).close();
    assert.throws(
      () => bus.intercept("tool.v1.execute.*", () => ({ action: "continue" }), { ctx: weather }),
      isBusError(BusCode.BUS_ACL_DENIED),
    );
    assert.equal(bus.stats().counters.denied.acl, 6);
    assert.equal(denials.length, 6);
  });

  await t.step("uplinks are checked, the kernel and clients are not", async () => {
    const uplink = ctxOf("alice", { kind: "uplink", name: "discord" });
    await assert.rejects(bus.publish("user.v1.prompt", 1, { ctx: uplink }), BusError);
    await bus.publish("user.v1.prompt", 1, { ctx: ctxOf("alice") });
    await bus.publish("user.v1.prompt", 1, {
      ctx: ctxOf("alice", { kind: "client", name: "cli-1" }),
    });
    bus.subscribe("*", { ctx: ctxOf("alice", { kind: "client", name: "cli-1" }) }).close();
  });

  await t.step("narrowing a list closes what it no longer covers", () => {
    const kept = bus.subscribe("tool.v1.execute.weather", { ctx: weather });
    const dropped = bus.subscribe("tool.v1.request.*", { ctx: weather });
    const ic = bus.intercept("tool.v1.request.describe", () => ({ action: "continue" }), {
      ctx: weather,
    });
    bus.setAcl("weather", { publish: [], subscribe: ["tool.v1.execute.weather"] });
    assert.equal(kept.closed, false);
    assert.equal(dropped.closed, true);
    assert.equal(ic.closed, true);
    bus.removeAcl("weather");
    assert.equal(kept.closed, true);
    assert.equal(bus.acl("weather"), undefined);
    assert.ok(logger.of("error").some((e) => /no longer covers/.test(e.message)));
  });

  await t.step("without an audit sink a denial is logged; a failing sink is logged", async () => {
    const log = new MemoryLogger();
    const plain = new EventBus({ logger: log });
    await assert.rejects(plain.publish("a.b", 1, { ctx: weather }), BusError);
    assert.match(log.of("error")[0].message, /no audit sink wired/);
    const failing = new EventBus({
      logger: log,
      audit: { denied: () => Promise.reject(new Error("disk full")) },
    });
    await assert.rejects(failing.publish("a.b", 1, { ctx: weather }), BusError);
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(log.of("error").some((e) => e.data?.error === "disk full"));
  });

  await t.step("refuses malformed allow patterns", () => {
    assert.throws(
      () => bus.setAcl("weather", { publish: ["tool.v1.exec*"], subscribe: [] }),
      isBusError(BusCode.BUS_INVALID_PATTERN, /"\*" must be a whole segment, got "exec\*"/),
    );
  });
});

Deno.test("EventBus.stats() counts by kind and reports gauges", async () => {
  const bus = new EventBus({ logger: new MemoryLogger() });
  const sub = bus.subscribe("m.*", { budgetBytes: 200 });
  bus.listen("m.*", () => {});
  bus.intercept("m.deny", () => ({ action: "deny", reason: "x" }));
  bus.intercept("m.final", () => ({ action: "final" }));
  const k = ctxOf("a");
  await bus.publish("m.json", { a: 1 }, { ctx: k });
  await bus.publish("m.bytes", new Uint8Array(10), {
    ctx: ctxOf("b", { kind: "client", name: "c" }),
  });
  await bus.publish("m.deny", 1, { ctx: k });
  await bus.publish("m.final", 1, { ctx: k });
  await bus.publish("m.json", { a: 2 }, { ctx: k });
  const s = bus.stats();
  assert.deepEqual(s.counters.published, { json: 4, bytes: 1 });
  assert.deepEqual(s.counters.publishedBySource, { capsule: 0, uplink: 0, kernel: 4, client: 1 });
  assert.equal(s.counters.delivered, 3, "three listener calls, nothing received yet");
  assert.equal(s.counters.evicted, 1);
  assert.deepEqual(s.counters.denied, { acl: 0, interceptor: 1 });
  assert.equal(s.counters.final, 1);
  assert.deepEqual(s.gauges, {
    listeners: 1,
    interceptors: 2,
    subscriptions: 1,
    activePrincipals: 2,
    queuedMessages: 2,
    queuedBytes: (64 + 7) + (64 + 10),
    pendingRequests: 0,
  });
  assert.deepEqual(s.subscriptions[0], {
    id: sub.id,
    subscriber: "kernel:kernel",
    pattern: "m.*",
    queuedMessages: 2,
    queuedBytes: 145,
    budgetBytes: 200,
    activePrincipals: 2,
    delivered: 0,
    evicted: 1,
    lagged: 0,
  });
});

Deno.test("EventBus feeds the storm monitor every accepted publish", async () => {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const monitor = new StormMonitor({
    clock,
    clientAttached: () => false,
    thresholdPerSecond: 10,
    windowMs: 1_000,
    logger,
  });
  const bus = new EventBus({ clock, stormMonitor: monitor });
  for (let i = 0; i < 50; i++) await bus.publish("loop.ping", i, { ctx: ctxOf("a") });
  clock.advance(1_000);
  await bus.publish("loop.pong", 0, { ctx: ctxOf("a") });
  assert.equal(monitor.storms, 1);
  assert.match(logger.of("warn")[0].message, /hottest topics: loop\.ping \(50\)/);
});

Deno.test("EventBus.closeOwner() and close() release what is open", async () => {
  const clock = new ManualClock();
  const bus = new EventBus({ clock, timers: new ManualTimers(clock) });
  bus.setAcl("c", { publish: ["*"], subscribe: ["*"] });
  const owner = { kind: "capsule", name: "c" } as const;
  const sub = bus.subscribe("a.*", { ctx: ctxOf("x", owner) });
  bus.subscribe("a.*", { ctx: ctxOf("x", owner) });
  const ic = bus.intercept("a.b", () => ({ action: "continue" }), { ctx: ctxOf("x", owner) });
  const other = bus.subscribe("a.*");
  assert.equal(bus.closeOwner(owner), 2);
  assert.equal(sub.closed, true, "closed although it had two handles");
  assert.equal(ic.closed, true);
  assert.equal(other.closed, false);
  const pending = bus.request("a.q", 1, { ctx: ctxOf("x") });
  assert.equal((await other.recv()).topic, "a.q");
  const waiting = other.recv();
  bus.close();
  await assert.rejects(pending, isBusError(BusCode.BUS_CLOSED));
  await assert.rejects(waiting, isBusError(BusCode.BUS_SUBSCRIPTION_CLOSED));
  await assert.rejects(bus.publish("a.b", 1, { ctx: ctxOf("x") }), isBusError(BusCode.BUS_CLOSED));
  assert.throws(() => bus.subscribe("a.*"), isBusError(BusCode.BUS_CLOSED));
});

Deno.test("EventBus.subscribe() with exclusive gives each caller its own queue", async () => {
  const bus = new EventBus();
  try {
    const shared1 = bus.subscribe("a.b");
    const shared2 = bus.subscribe("a.b");
    const own1 = bus.subscribe("a.b", { exclusive: true });
    const own2 = bus.subscribe("a.b", { exclusive: true });
    assert.equal(shared1, shared2);
    assert.notEqual(own1, own2);
    await bus.publish("a.b", { n: 1 }, { ctx: ctxOf("alice") });
    // Every exclusive queue gets its own copy; the shared handles see one queue.
    assert.ok(own1.poll() !== undefined);
    assert.ok(own2.poll() !== undefined);
    assert.ok(shared1.poll() !== undefined);
    assert.equal(shared2.poll(), undefined);
    own1.close();
    await bus.publish("a.b", { n: 2 }, { ctx: ctxOf("alice") });
    assert.ok(own2.poll() !== undefined);
  } finally {
    await bus.close();
  }
});

Deno.test("EventBus.publish() reports how many capsule handlers a delivered message passed", async (t) => {
  const ctx = ctxOf("alice");
  const capsule = (name: string) => ctxOf("alice", { kind: "capsule", name });
  const handlersOf = (r: Awaited<ReturnType<EventBus["publish"]>>): number => {
    assert.equal(r.outcome, "delivered");
    return r.outcome === "delivered" ? r.handlers : -1;
  };

  await t.step("0 with no interceptor, and 0 for kernel interceptors", async () => {
    const bus = new EventBus();
    assert.equal(handlersOf(await bus.publish("session.v1.request.load", {}, { ctx })), 0);
    bus.intercept("session.v1.request.*", () => ({ action: "continue" }), { priority: 10 });
    const r = await bus.publish("session.v1.request.load", {}, { ctx });
    assert.equal(handlersOf(r), 0);
    assert.equal(r.outcome === "delivered" && r.recipients, 0, "nobody was reached");
  });

  await t.step("counts capsule and uplink handlers that ran, not closed ones", async () => {
    const bus = new EventBus();
    bus.setAcl("session", { publish: [], subscribe: ["session.v1.request.*"] });
    bus.setAcl("mirror", { publish: [], subscribe: ["session.v1.request.*"] });
    bus.setAcl("gone", { publish: [], subscribe: ["session.v1.request.*"] });
    bus.intercept("session.v1.request.*", () => ({ action: "continue" }), { priority: 10 });
    bus.intercept("session.v1.request.*", () => ({ action: "continue" }), {
      ctx: capsule("session"),
    });
    bus.intercept("session.v1.request.*", () => ({ action: "continue" }), {
      ctx: ctxOf("alice", { kind: "uplink", name: "mirror" }),
    });
    bus.intercept("session.v1.request.*", () => ({ action: "continue" }), {
      ctx: capsule("gone"),
    }).close();
    assert.equal(handlersOf(await bus.publish("session.v1.request.load", {}, { ctx })), 2);
    assert.equal(handlersOf(await bus.publish("llm.v1.request.generate.x", {}, { ctx })), 0);
  });

  await t.step("a capsule handler that failed and was skipped still ran", async () => {
    const logger = new MemoryLogger();
    const bus = new EventBus({ logger });
    bus.setAcl("broken", { publish: [], subscribe: ["session.v1.request.*"] });
    bus.intercept("session.v1.request.*", () => {
      throw new Error("boom");
    }, { ctx: capsule("broken") });
    assert.equal(handlersOf(await bus.publish("session.v1.request.load", {}, { ctx })), 1);
  });

  await t.step("concurrent publishes through the same chain are counted apart", async () => {
    const bus = new EventBus();
    bus.setAcl("slow", { publish: [], subscribe: ["session.v1.request.*"] });
    const gates: Array<() => void> = [];
    bus.intercept("session.v1.request.*", () =>
      new Promise((resolve) => {
        gates.push(() => resolve({ action: "continue" }));
      }), { ctx: capsule("slow") });
    bus.intercept("session.v1.request.*", (m) => ({
      action: "continue",
      payload: { seen: m.topic },
    }), { ctx: capsule("slow") });
    const a = bus.publish("session.v1.request.load", {}, { ctx });
    const b = bus.publish("session.v1.request.append", {}, { ctx });
    await Promise.resolve();
    assert.equal(gates.length, 2);
    for (const open of gates) open();
    assert.deepEqual([handlersOf(await a), handlersOf(await b)], [2, 2]);
  });

  await t.step("a Final result carries no count", async () => {
    const bus = new EventBus();
    bus.setAcl("cache", { publish: [], subscribe: ["llm.v1.request.*"] });
    bus.intercept("llm.v1.request.*", () => ({ action: "final" }), { ctx: capsule("cache") });
    const r = await bus.publish("llm.v1.request.generate", {}, { ctx });
    assert.equal(r.outcome, "final");
    assert.equal("handlers" in r, false);
  });
});

Deno.test("EventBus.publish() counts only the principal-scoped handlers and subscriptions that took it", async (t) => {
  const topic = "llm.v1.request.generate.openai";
  const bobCapsule = ctxOf("bob", { kind: "capsule", name: "provider@bob" });
  const setup = () => {
    const bus = new EventBus();
    bus.setAcl("provider@bob", { publish: [], subscribe: ["llm.v1.request.*"] });
    const calls: string[] = [];
    bus.intercept("llm.v1.request.generate.*", (m) => {
      calls.push(m.principal);
      return { action: "continue" };
    }, { ctx: bobCapsule, principal: principalId("bob") });
    const sub = bus.subscribe("llm.v1.request.*", {
      ctx: bobCapsule,
      principal: principalId("bob"),
    });
    return { bus, calls, sub };
  };
  const counts = (r: Awaited<ReturnType<EventBus["publish"]>>) => {
    assert.equal(r.outcome, "delivered");
    return r.outcome === "delivered" ? [r.recipients, r.handlers] : [];
  };

  await t.step(
    "alice's message reaches nobody: bob's interceptor is neither run nor counted",
    async () => {
      const { bus, calls, sub } = setup();
      const r = await bus.publish(topic, {}, { ctx: ctxOf("alice") });
      assert.deepEqual(counts(r), [0, 0]);
      assert.deepEqual(calls, []);
      assert.equal(sub.queuedMessages, 0);
    },
  );

  await t.step("bob's message reaches bob's interceptor and subscription", async () => {
    const { bus, calls, sub } = setup();
    const r = await bus.publish(topic, {}, { ctx: ctxOf("bob") });
    assert.deepEqual(counts(r), [1, 1]);
    assert.deepEqual(calls, ["bob"]);
    assert.equal(sub.queuedMessages, 1);
  });

  await t.step("scoped and unscoped interceptors keep priority order per principal", async () => {
    const bus = new EventBus();
    const order: string[] = [];
    const at = (name: string, priority: number, principal?: string) =>
      bus.intercept("demo.v1.x", () => {
        order.push(name);
        return { action: "continue" };
      }, { priority, ...(principal === undefined ? {} : { principal: principalId(principal) }) });
    at("all-150", 150);
    at("bob-50", 50, "bob");
    at("all-10", 10);
    at("alice-100", 100, "alice");
    at("bob-120", 120, "bob");
    await bus.publish("demo.v1.x", {}, { ctx: ctxOf("bob") });
    assert.deepEqual(order.splice(0), ["all-10", "bob-50", "bob-120", "all-150"]);
    await bus.publish("demo.v1.x", {}, { ctx: ctxOf("alice") });
    assert.deepEqual(order.splice(0), ["all-10", "alice-100", "all-150"]);
    await bus.publish("demo.v1.x", {}, { ctx: ctxOf("carol") });
    assert.deepEqual(order.splice(0), ["all-10", "all-150"]);
  });

  await t.step("a closed subscription is no recipient", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("demo.v1.*");
    const r1 = await bus.publish("demo.v1.x", {}, { ctx: ctxOf("alice") });
    assert.deepEqual(counts(r1), [1, 0]);
    sub.close();
    const r2 = await bus.publish("demo.v1.x", {}, { ctx: ctxOf("alice") });
    assert.deepEqual(counts(r2), [0, 0]);
  });

  await t.step("an invalid principal option is refused", () => {
    const bus = new EventBus();
    assert.throws(
      () =>
        bus.intercept("demo.v1.x", () => ({ action: "continue" }), {
          principal: "Not A Principal" as ReturnType<typeof principalId>,
        }),
      isBusError(BusCode.BUS_INVALID_OPTION, /principal/),
    );
  });
});
