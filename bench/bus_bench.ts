/**
 * Event bus throughput: publish → deliver to one routed subscriber, and fan-out to 100
 * subscribers, each beside a bare `EventTarget` dispatch (a `CustomEvent` carrying the same
 * payload to the same number of listeners) measured in the same run as the baseline.
 *
 * Goal (issue 3): the bus reaches at least 40% of the baseline's rate, i.e. deno bench prints
 * the bus at most 2.5× slower than the baseline.
 *
 * The bus does work the baseline does not: it validates the topic, stamps an id and a timestamp
 * (`Date.now()`), and measures the payload (a JSON payload costs a `JSON.stringify` and a UTF-8
 * length; bytes cost nothing). The "sizing alone" line shows that share on its own.
 *
 * Each iteration moves 100 messages so per-iteration overhead does not dominate. Latency
 * percentiles and memory per principal are in `bench/bus_latency.ts`.
 *
 * Run: deno bench -A bench/bus_bench.ts
 */
import { Buffer } from "node:buffer";
import { type BusContext, EventBus, type RoutedSubscription } from "../kernel/events/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";

const BATCH = 100;
const FANOUT = 100;
const ONE = "one subscriber (goal: bus >= 40% of baseline, at most 2.5x slower)";
const MANY = "fan-out to 100 (goal: bus >= 40% of baseline, at most 2.5x slower)";
const payload = { seq: 1, text: "hello from the bench" };
const bytes = new TextEncoder().encode(JSON.stringify(payload));
const ctx: BusContext = {
  principal: principalId("bench"),
  source: { kind: "kernel", name: "bench" },
};
let _sink: unknown;

// --- one subscriber ---------------------------------------------------------------------------

const target1 = new EventTarget();
target1.addEventListener("msg", (e) => _sink = (e as CustomEvent).detail);

const busJson = new EventBus();
const subJson = busJson.subscribe("bench.v1.*");
const busBytes = new EventBus();
const subBytes = busBytes.subscribe("bench.v1.*");
const busListen = new EventBus();
busListen.listen("bench.v1.*", (m) => _sink = m);

// --- fan-out to 100 ---------------------------------------------------------------------------

const target100 = new EventTarget();
for (let i = 0; i < FANOUT; i++) {
  target100.addEventListener("msg", (e) => _sink = (e as CustomEvent).detail);
}
const busL100 = new EventBus();
for (let i = 0; i < FANOUT; i++) busL100.listen("bench.v1.*", (m) => _sink = m);
const busR100 = new EventBus();
const subs100: RoutedSubscription[] = [];
for (let i = 0; i < FANOUT; i++) {
  busR100.setAcl(`c${i}`, { publish: [], subscribe: ["bench.v1.*"] });
  const source = { kind: "capsule", name: `c${i}` } as const;
  subs100.push(busR100.subscribe("bench.v1.*", { ctx: { ...ctx, source } }));
}

// Warm every path up once so the first measured bench does not pay for compilation.
for (let i = 0; i < 20_000; i++) {
  await busJson.publish("bench.v1.event", payload, { ctx });
  subJson.poll();
  await busBytes.publish("bench.v1.event", bytes, { ctx });
  subBytes.poll();
  await busListen.publish("bench.v1.event", payload, { ctx });
  if (i % 10 === 0) {
    await busL100.publish("bench.v1.event", payload, { ctx });
    await busR100.publish("bench.v1.event", payload, { ctx });
    for (const s of subs100) s.poll();
  }
}

Deno.bench("1 subscriber: EventTarget dispatch (baseline)", {
  group: ONE,
  baseline: true,
  n: 5_000,
  warmup: 500,
}, () => {
  for (let i = 0; i < BATCH; i++) {
    target1.dispatchEvent(new CustomEvent("msg", { detail: payload }));
  }
});

Deno.bench("1 subscriber: bus publish JSON (awaited) → routed poll()", {
  group: ONE,
  n: 5_000,
  warmup: 500,
}, async () => {
  for (let i = 0; i < BATCH; i++) {
    await busJson.publish("bench.v1.event", payload, { ctx });
    _sink = subJson.poll();
  }
});

Deno.bench("1 subscriber: bus publish JSON (not awaited) → routed poll()", {
  group: ONE,
  n: 5_000,
  warmup: 500,
}, () => {
  for (let i = 0; i < BATCH; i++) {
    busJson.publish("bench.v1.event", payload, { ctx });
    _sink = subJson.poll();
  }
});

Deno.bench("1 subscriber: bus publish bytes (awaited) → routed poll()", {
  group: ONE,
  n: 5_000,
  warmup: 500,
}, async () => {
  for (let i = 0; i < BATCH; i++) {
    await busBytes.publish("bench.v1.event", bytes, { ctx });
    _sink = subBytes.poll();
  }
});

Deno.bench("1 subscriber: bus publish JSON (awaited) → broadcast listener", {
  group: ONE,
  n: 5_000,
  warmup: 500,
}, async () => {
  for (let i = 0; i < BATCH; i++) await busListen.publish("bench.v1.event", payload, { ctx });
});

Deno.bench("reference: JSON sizing alone (JSON.stringify + UTF-8 length) + Date.now()", {
  group: ONE,
  n: 5_000,
  warmup: 500,
}, () => {
  for (let i = 0; i < BATCH; i++) {
    _sink = Buffer.byteLength(JSON.stringify(payload), "utf8") + Date.now();
  }
});

Deno.bench("100 subscribers: EventTarget dispatch (baseline)", {
  group: MANY,
  baseline: true,
  n: 500,
  warmup: 100,
}, () => {
  for (let i = 0; i < BATCH; i++) {
    target100.dispatchEvent(new CustomEvent("msg", { detail: payload }));
  }
});

Deno.bench("100 subscribers: bus publish JSON (awaited) → 100 broadcast listeners", {
  group: MANY,
  n: 500,
  warmup: 100,
}, async () => {
  for (let i = 0; i < BATCH; i++) await busL100.publish("bench.v1.event", payload, { ctx });
});

Deno.bench("100 subscribers: bus publish JSON (awaited) → 100 routed poll()", {
  group: MANY,
  n: 500,
  warmup: 100,
}, async () => {
  for (let i = 0; i < BATCH; i++) {
    await busR100.publish("bench.v1.event", payload, { ctx });
    for (let s = 0; s < FANOUT; s++) _sink = subs100[s].poll();
  }
});
