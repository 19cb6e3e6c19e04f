/**
 * Proves the event bus stays fair under a flood (issue 3): one principal publishing 100,000
 * messages cannot starve 999 others who publish one each — every one of theirs is delivered
 * before the flood's backlog drains, and nothing is lost. With the default 1 MiB budget, only
 * the flooding principal's messages are evicted, and each eviction is counted.
 */
import assert from "node:assert/strict";
import {
  type BusContext,
  type BusLogger,
  type BusMessage,
  EventBus,
  LAGGED_TOPIC,
  type RoutedSubscription,
} from "../kernel/events/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { ManualClock } from "../kernel/clock.ts";

const FLOOD = 100_000;
const OTHERS = 999;

const quietLogger: BusLogger & { errors: number } = {
  errors: 0,
  warn() {},
  error() {
    this.errors++;
  },
};

function ctxOf(principal: string): BusContext {
  return { principal: principalId(principal), source: { kind: "uplink", name: "gateway" } };
}

/** Publishes the flood with the 999 single messages spread through it. */
async function publishFlood(bus: EventBus): Promise<void> {
  const flood = ctxOf("flood");
  const every = Math.floor(FLOOD / OTHERS);
  let other = 0;
  for (let i = 0; i < FLOOD; i++) {
    await bus.publish("user.v1.prompt", { seq: i, text: "spam spam spam" }, { ctx: flood });
    if (i % every === every - 1 && other < OTHERS) {
      await bus.publish("user.v1.prompt", { seq: other, text: "hello" }, {
        ctx: ctxOf(`user-${other}`),
      });
      other++;
    }
  }
  assert.equal(other, OTHERS);
}

/** The JSON payload of `msg` as an object. */
function json(msg: BusMessage): Record<string, number> {
  assert.equal(msg.payload.kind, "json");
  return (msg.payload as { value: Record<string, number> }).value;
}

function drain(sub: RoutedSubscription): BusMessage[] {
  const out: BusMessage[] = [];
  for (let m = sub.poll(); m !== undefined; m = sub.poll()) out.push(m);
  return out;
}

function newBus(): EventBus {
  const bus = new EventBus({ logger: quietLogger, clock: new ManualClock() });
  bus.setAcl("gateway", { publish: ["user.v1.*"], subscribe: [] });
  return bus;
}

Deno.test("bus fairness: 999 principals are served before a 100,000-message flood drains", async (t) => {
  await t.step("with a budget that holds the flood, nothing is lost", async () => {
    const bus = newBus();
    const sub = bus.subscribe("user.v1.*", { budgetBytes: 64 * 1024 * 1024 });
    await publishFlood(bus);
    assert.equal(sub.queuedMessages, FLOOD + OTHERS);
    assert.equal(sub.activePrincipals, OTHERS + 1);

    const got = drain(sub);
    assert.equal(got.length, FLOOD + OTHERS, "every message was delivered");
    const stats = bus.stats();
    assert.equal(stats.counters.evicted, 0);
    assert.equal(stats.counters.lagged, 0);
    assert.equal(got.filter((m) => m.topic === LAGGED_TOPIC).length, 0);

    const floodSeqs = got.filter((m) => m.principal === "flood").map((m) => json(m).seq);
    assert.equal(floodSeqs.length, FLOOD);
    assert.ok(floodSeqs.every((s, i) => s === i), "the flood arrives in order");

    const lastFlood = got.findLastIndex((m) => m.principal === "flood");
    const others = new Set<string>();
    let lastOther = -1;
    got.forEach((m, i) => {
      if (m.principal !== "flood") {
        others.add(m.principal);
        lastOther = i;
      }
    });
    assert.equal(others.size, OTHERS, "each of the 999 principals got its message through");
    assert.ok(lastOther < lastFlood, "all 999 were delivered before the flood's backlog drained");
    // Stronger: they all went in the first DRR round, ahead of almost all of the flood.
    const floodBefore = got.slice(0, lastOther).filter((m) => m.principal === "flood").length;
    assert.ok(floodBefore < 100, `only ${floodBefore} flood messages went before the last other`);
    assert.equal(sub.activePrincipals, 0, "drained principals cost nothing");
  });

  await t.step(
    "with the default 1 MiB budget, only the flood is evicted, and counted",
    async () => {
      quietLogger.errors = 0;
      const bus = newBus();
      const sub = bus.subscribe("user.v1.*");
      await publishFlood(bus);
      const got = drain(sub);
      const stats = bus.stats();
      const notices = got.filter((m) => m.topic === LAGGED_TOPIC);
      const delivered = got.filter((m) => m.topic !== LAGGED_TOPIC);
      const others = delivered.filter((m) => m.principal !== "flood");
      const flood = delivered.filter((m) => m.principal === "flood");
      assert.equal(others.length, OTHERS, "none of the 999 lost its message");
      assert.ok(stats.counters.evicted > 0);
      assert.equal(
        flood.length + stats.counters.evicted,
        FLOOD,
        "every flood message is accounted",
      );
      assert.deepEqual(notices.map((m) => m.principal), ["flood"], "only the flood lagged");
      assert.equal(
        json(notices[0]).dropped,
        stats.counters.evicted,
      );
      assert.equal(quietLogger.errors, 2, "the eviction episode was logged (first and total)");
    },
  );
});
