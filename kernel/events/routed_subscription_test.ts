import assert from "node:assert/strict";
import {
  BusCode,
  BusError,
  type BusMessage,
  EventBus,
  LAGGED_TOPIC,
  MESSAGE_OVERHEAD_BYTES,
  type RoutedSubscription,
} from "./mod.ts";
import { ManualClock } from "../clock.ts";
import { ctxOf, MemoryLogger } from "./_test_helpers.ts";

/** A bytes payload whose message costs exactly `cost` bytes against a budget. */
function costing(cost: number): Uint8Array {
  return new Uint8Array(cost - MESSAGE_OVERHEAD_BYTES);
}

function drain(sub: RoutedSubscription): BusMessage[] {
  const out: BusMessage[] = [];
  for (let m = sub.poll(); m !== undefined; m = sub.poll()) out.push(m);
  return out;
}

function tag(msg: BusMessage): string {
  return msg.topic === LAGGED_TOPIC ? `lagged:${msg.principal}` : msg.topic.split(".").pop()!;
}

Deno.test("RoutedSubscription drains principals by deficit round robin", async (t) => {
  await t.step("two messages per turn when the quantum fits two", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("t.*", { quantumBytes: 200 });
    for (let i = 0; i < 6; i++) await bus.publish("t.a", costing(100), { ctx: ctxOf("a") });
    for (let i = 0; i < 4; i++) await bus.publish("t.b", costing(100), { ctx: ctxOf("b") });
    await bus.publish("t.c", costing(100), { ctx: ctxOf("c") });
    assert.equal(sub.activePrincipals, 3);
    assert.deepEqual(drain(sub).map(tag), "a a b b c a a b b a a".split(" "));
    assert.equal(sub.activePrincipals, 0);
    assert.equal(sub.queuedBytes, 0);
  });

  await t.step("byte fairness: small messages go several per turn, large ones wait", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("t.*", { quantumBytes: 300 });
    for (let i = 0; i < 4; i++) await bus.publish("t.big", costing(600), { ctx: ctxOf("big") });
    for (let i = 0; i < 9; i++) await bus.publish("t.small", costing(100), { ctx: ctxOf("small") });
    // big gets 300 bytes a round: one 600-byte message every second round
    assert.deepEqual(
      drain(sub).map(tag).join(" "),
      "small small small big small small small small small small big big big",
    );
  });

  await t.step("a principal arriving mid-round joins at the end of the round", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("t.*", { quantumBytes: 100 });
    await bus.publish("t.a", costing(100), { ctx: ctxOf("a") });
    await bus.publish("t.a", costing(100), { ctx: ctxOf("a") });
    await bus.publish("t.b", costing(100), { ctx: ctxOf("b") });
    assert.equal(tag(sub.poll()!), "a");
    await bus.publish("t.c", costing(100), { ctx: ctxOf("c") });
    assert.deepEqual(drain(sub).map(tag), ["b", "c", "a"]);
  });
});

Deno.test("RoutedSubscription keeps no state for an idle principal", async () => {
  const bus = new EventBus();
  const sub = bus.subscribe("t.*");
  for (let i = 0; i < 100; i++) {
    await bus.publish("t.x", { i }, { ctx: ctxOf(`p${i}`) });
  }
  assert.equal(sub.activePrincipals, 100);
  assert.equal(sub.queuedMessages, 100);
  assert.equal(drain(sub).length, 100);
  assert.equal(sub.activePrincipals, 0);
  assert.equal(bus.stats().gauges.activePrincipals, 0);
});

Deno.test("RoutedSubscription evicts under its byte budget", async (t) => {
  await t.step(
    "the oldest message of the heaviest principal goes, logged and counted",
    async () => {
      const logger = new MemoryLogger();
      const bus = new EventBus({ logger });
      const sub = bus.subscribe("t.*", { budgetBytes: 1000, ctx: ctxOf("default") });
      for (let i = 0; i < 20; i++) {
        await bus.publish(`t.a${i}`, costing(100), { ctx: ctxOf("flood") });
        if (i === 5 || i === 15) await bus.publish("t.b", costing(100), { ctx: ctxOf("quiet") });
      }
      assert.equal(sub.queuedBytes, 1000);
      assert.equal(sub.stats().evicted, 12);
      assert.equal(bus.stats().counters.evicted, 12);
      const errors = logger.of("error");
      assert.equal(errors.length, 1, "the first eviction of an episode is logged at once");
      assert.match(errors[0].message, /evicted a message of principal "flood"/);
      assert.equal(errors[0].data?.principal, "flood");
      assert.equal(errors[0].data?.topic, "t.a0");
      assert.equal(errors[0].data?.subscriber, "kernel:test");
      const got = drain(sub);
      assert.equal(tag(got[0]), "lagged:flood", "the notice comes before any message");
      assert.equal(got[0].source.name, "event_bus");
      const notice = got[0].payload.kind === "json" ? got[0].payload.value : undefined;
      assert.deepEqual(notice, {
        subscription: sub.id,
        subscriber: "kernel:test",
        pattern: "t.*",
        principal: "flood",
        dropped: 12,
        topics: ["t.a0", "t.a1", "t.a2", "t.a3", "t.a4", "t.a5", "t.a6", "t.a7"],
      });
      const rest = got.slice(1).map(tag);
      assert.equal(rest.filter((x) => x === "b").length, 2, "the quiet principal lost nothing");
      assert.deepEqual(
        rest.filter((x) => x !== "b"),
        [12, 13, 14, 15, 16, 17, 18, 19].map((i) => `a${i}`),
      );
      assert.equal(bus.stats().counters.lagged, 1);
      assert.equal(logger.of("error").length, 2, "the episode total is logged with the notice");
      assert.match(
        logger.of("error")[1].message,
        /^Routed subscription evicted 12 messages in all, principals "flood"$/,
      );
      assert.equal(logger.of("error")[1].data?.evicted, 12);
    },
  );

  await t.step("a terminator is never evicted before its stream's earlier messages", async () => {
    const bus = new EventBus({ logger: new MemoryLogger() });
    const sub = bus.subscribe("s.*", { budgetBytes: 400 });
    const ctx = ctxOf("a");
    await bus.publish("s.d1", costing(100), { ctx });
    await bus.publish("s.d2", costing(100), { ctx });
    await bus.publish("s.d3", costing(100), { ctx });
    await bus.publish("s.end", costing(100), { ctx, end_of_stream: true });
    await bus.publish("s.n1", costing(100), { ctx });
    await bus.publish("s.n2", costing(100), { ctx });
    assert.deepEqual(drain(sub).map(tag), ["lagged:a", "d3", "end", "n1", "n2"]);
  });

  await t.step("a terminator at the head is kept while later messages are evicted", async () => {
    const bus = new EventBus({ logger: new MemoryLogger() });
    const sub = bus.subscribe("s.*", { budgetBytes: 300 });
    const ctx = ctxOf("a");
    await bus.publish("s.end", costing(100), { ctx, end_of_stream: true });
    for (let i = 1; i <= 4; i++) await bus.publish(`s.m${i}`, costing(100), { ctx });
    assert.deepEqual(drain(sub).map(tag), ["lagged:a", "end", "m3", "m4"]);
  });

  await t.step("when a principal holds only terminators, its oldest goes", async () => {
    const bus = new EventBus({ logger: new MemoryLogger() });
    const sub = bus.subscribe("s.*", { budgetBytes: 200 });
    for (let i = 1; i <= 3; i++) {
      await bus.publish(`s.end${i}`, costing(100), { ctx: ctxOf("a"), end_of_stream: true });
    }
    assert.deepEqual(drain(sub).map(tag), ["lagged:a", "end2", "end3"]);
  });

  await t.step("a message larger than the whole budget is kept when it is alone", async () => {
    const bus = new EventBus({ logger: new MemoryLogger() });
    const sub = bus.subscribe("t.*", { budgetBytes: 1000 });
    await bus.publish("t.huge", costing(5000), { ctx: ctxOf("a") });
    assert.equal(sub.queuedMessages, 1);
    await bus.publish("t.next", costing(100), { ctx: ctxOf("b") });
    assert.deepEqual(drain(sub).map(tag), ["lagged:a", "next"]);
  });
});

Deno.test("RoutedSubscription onEvict hears of each evicted message once room is made", async (t) => {
  await t.step(
    "one call per evicted message, in eviction order, after the queue is consistent",
    async () => {
      const bus = new EventBus({ logger: new MemoryLogger() });
      const evicted: string[] = [];
      const sub = bus.subscribe("s.*", {
        budgetBytes: 300,
        onEvict: (m) => {
          assert.ok(sub.queuedBytes <= 300, "called once the budget holds again");
          evicted.push(`${m.topic}:${m.request_id}`);
        },
      });
      for (let i = 1; i <= 5; i++) {
        await bus.publish(`s.m${i}`, costing(100), { ctx: ctxOf("a"), request_id: `r${i}` });
      }
      assert.deepEqual(evicted, ["s.m1:r1", "s.m2:r2"]);
      assert.deepEqual(drain(sub).map(tag), ["lagged:a", "m3", "m4", "m5"]);
    },
  );

  await t.step("a throwing hook is logged, never reaches the publisher", async () => {
    const logger = new MemoryLogger();
    const bus = new EventBus({ logger });
    bus.subscribe("s.*", {
      budgetBytes: 100,
      onEvict: () => {
        throw new Error("hook broke");
      },
    });
    await bus.publish("s.a", costing(100), { ctx: ctxOf("a") });
    const r = await bus.publish("s.b", costing(100), { ctx: ctxOf("a") });
    assert.equal(r.outcome, "delivered");
    assert.ok(logger.of("error").some((e) => /Eviction hook/.test(e.message)));
  });
});

Deno.test("RoutedSubscription.recv() waits, aborts and fails on close", async (t) => {
  await t.step("resolves when a message arrives", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("t.*");
    const pending = sub.recv();
    await bus.publish("t.x", { n: 1 }, { ctx: ctxOf("a") });
    const msg = await pending;
    assert.deepEqual(msg.payload, { kind: "json", value: { n: 1 } });
    assert.equal(bus.stats().counters.delivered, 1);
    assert.equal(sub.queuedMessages, 0);
  });

  await t.step("serves concurrent receivers in the order they waited", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("t.*");
    const first = sub.recv();
    const second = sub.recv();
    await bus.publish("t.one", 1, { ctx: ctxOf("a") });
    await bus.publish("t.two", 2, { ctx: ctxOf("a") });
    assert.equal((await first).topic, "t.one");
    assert.equal((await second).topic, "t.two");
  });

  await t.step("rejects with the abort reason", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("t.*");
    const ac = new AbortController();
    const pending = sub.recv({ signal: ac.signal });
    ac.abort(new Error("stop"));
    await assert.rejects(pending, /stop/);
    await bus.publish("t.x", 1, { ctx: ctxOf("a") });
    assert.equal(sub.queuedMessages, 1, "an aborted receiver takes nothing");
    await assert.rejects(sub.recv({ signal: AbortSignal.abort(new Error("early")) }), /early/);
  });

  await t.step("rejects pending receivers when closed, and refuses use after", async () => {
    const bus = new EventBus();
    const sub = bus.subscribe("t.*");
    const pending = sub.recv();
    sub.close();
    await assert.rejects(pending, (err: unknown) => {
      assert.ok(err instanceof BusError);
      assert.equal(err.code, BusCode.BUS_SUBSCRIPTION_CLOSED);
      assert.match(err.message, /Subscription of "kernel:kernel" to "t\.\*" is closed/);
      return true;
    });
    assert.throws(() => sub.poll(), BusError);
    await assert.rejects(sub.recv(), BusError);
    assert.equal(bus.stats().gauges.subscriptions, 0);
    const result = await bus.publish("t.x", 1, { ctx: ctxOf("a") });
    assert.equal(result.outcome === "delivered" && result.recipients, 0);
  });
});

Deno.test("EventBus.subscribe() shares one subscription per key", async () => {
  const bus = new EventBus();
  const a = bus.subscribe("t.*");
  const b = bus.subscribe("t.*");
  const scoped = bus.subscribe("t.*", { principal: ctxOf("alice").principal });
  assert.equal(a, b);
  assert.notEqual(a, scoped);
  await bus.publish("t.x", 1, { ctx: ctxOf("alice") });
  await bus.publish("t.x", 2, { ctx: ctxOf("bob") });
  assert.equal(a.queuedMessages, 2);
  assert.equal(scoped.queuedMessages, 1, "a principal-scoped subscription gets only its own");
  a.close();
  assert.equal(b.closed, false, "the second handle keeps it open");
  b.close();
  assert.equal(a.closed, true);
});

Deno.test("RoutedSubscription logs an eviction storm over many principals in a few lines", async () => {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const bus = new EventBus({ clock, logger });
  const sub = bus.subscribe("t.*", { budgetBytes: 100 * 10 });
  // 3,000 principals, one message each: all but the last 10 are evicted.
  for (let i = 0; i < 3000; i++) {
    await bus.publish("t.x", costing(100), { ctx: ctxOf(`p${i}`) });
    if (i === 1500) clock.advance(1_000);
  }
  assert.equal(bus.stats().counters.evicted, 2990);
  const lines = logger.of("error");
  assert.equal(lines.length, 3, "first eviction, the first window's total, the next first");
  assert.match(lines[0].message, /evicted a message of principal "p0"/);
  assert.match(
    lines[1].message,
    /evicted 1491 messages in all, principals "p0", .* and maybe others/,
  );
  const got = drain(sub);
  const notices = got.filter((m) => m.topic === LAGGED_TOPIC);
  assert.equal(notices.length, 1024 + 1, "capped notices plus one overflow notice");
  const last = notices[notices.length - 1].payload;
  assert.equal(last.kind === "json" && (last.value as { overflow?: boolean }).overflow, true);
  const dropped = notices.reduce(
    (n, m) =>
      n + (m.payload.kind === "json" ? (m.payload.value as { dropped: number }).dropped : 0),
    0,
  );
  assert.equal(dropped, 2990, "every eviction is in some notice");
  assert.equal(got.length - notices.length, 10);
  assert.equal(logger.of("error").length, 4, "the second episode's total once all were told");
});
