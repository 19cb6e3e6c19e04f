/**
 * The WebAssembly engine's costs, each beside a baseline measured in the same run (deno bench
 * prints the ratio; the goal is in the group's first bench name):
 *
 * - in-worker host call (`clock_ms` in a loop inside the guest) vs a bare wasm→JS import in
 *   the main thread — goal ≤ 5×;
 * - kernel-routed host call vs a bare SharedArrayBuffer/Atomics round trip written the same
 *   way — goal ≤ 1.5× (p50 ≤ 25 µs: see `wasm_engine_latency.ts`);
 * - capsule cold load of a ~200 KB module vs compile + bare worker + instantiate — goal p50 ≤ 50 ms;
 * - warm invocation round trip vs a bare postMessage round trip — goal p50 ≤ 100 µs;
 * - 1,000 concurrent invocations across 4 capsules (asserted: none lost) vs 1,000 bare
 *   postMessage round trips across 4 workers.
 *
 * Run: deno bench -A bench/wasm_engine_bench.ts  (percentiles: deno run -A bench/wasm_engine_latency.ts)
 */
import { encodeU32 } from "../host_abi/encoding.ts";
import {
  bareColdLoad,
  bareEchoWorker,
  bareImportLoop,
  BareSabRoundTrip,
  BENCH_GUEST,
  benchEngine,
  bigModule,
  CTX,
  loopOn,
} from "./wasm_engine_fixtures.ts";

const CALLS = 10_000;
const engine = benchEngine();
const capsule = await engine.load("bench", BENCH_GUEST);
const capsules = await Promise.all(
  ["c0", "c1", "c2", "c3"].map((n) => engine.load(n, BENCH_GUEST, { pool: { maxInstances: 2 } })),
);
const importLoop = bareImportLoop();
const bareSab = await BareSabRoundTrip.start({
  spinMicros: engine.limits.spinMicros,
  kernelSpinMicros: engine.limits.kernelSpinMicros,
});
const bareEcho = await bareEchoWorker();
const bareEchoes = await Promise.all([0, 1, 2, 3].map(() => bareEchoWorker()));
const payload16 = new Uint8Array(16).fill(3);
let seed = 0;
const loader = benchEngine();

Deno.bench(`in-worker host call ×${CALLS}: clock_ms via the ABI (goal ≤ 5×)`, {
  group: "in-worker host call",
}, async () => {
  await loopOn(capsule, "clock_loop", CALLS);
});
Deno.bench(`in-worker host call ×${CALLS}: bare wasm→JS import, main thread`, {
  group: "in-worker host call",
  baseline: true,
}, () => {
  importLoop(CALLS);
});

Deno.bench(`kernel-routed host call ×1000: via the engine's channel (goal ≤ 1.5×)`, {
  group: "kernel-routed host call",
}, async () => {
  await loopOn(capsule, "host_loop", 1000);
});
Deno.bench(`kernel-routed host call ×1000: bare SAB/Atomics round trip`, {
  group: "kernel-routed host call",
  baseline: true,
}, async () => {
  await bareSab.run(1000);
});

Deno.bench("cold load of a ~200 KB module: WasmEngine.load() (goal p50 ≤ 50 ms)", {
  group: "cold load",
  n: 40,
  warmup: 5,
}, async () => {
  const c = await loader.load(`cold${seed}`, bigModule(seed++));
  c.close();
});
Deno.bench("cold load of a ~200 KB module: compile + bare worker + instantiate", {
  group: "cold load",
  baseline: true,
  n: 40,
  warmup: 5,
}, async () => {
  await bareColdLoad(bigModule(seed++));
});

Deno.bench("warm invocation round trip, 16 bytes: WasmCapsule.invoke() (goal p50 ≤ 100 µs)", {
  group: "warm invocation",
}, async () => {
  await capsule.invoke("echo", payload16, CTX);
});
Deno.bench("warm invocation round trip, 16 bytes: bare postMessage echo", {
  group: "warm invocation",
  baseline: true,
}, async () => {
  await bareEcho.echo(payload16);
});

Deno.bench("1,000 concurrent invocations across 4 capsules (none lost)", {
  group: "1,000 concurrent",
}, async () => {
  const replies = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => capsules[i % 4].invoke("echo", encodeU32(i), CTX)),
  );
  for (let i = 0; i < 1000; i++) {
    const r = replies[i];
    if (r.length !== 4 || new DataView(r.buffer, r.byteOffset, 4).getUint32(0, true) !== i) {
      throw new Error(`Invocation ${i} lost or mixed up`);
    }
  }
});
Deno.bench("1,000 concurrent: bare postMessage round trips across 4 workers", {
  group: "1,000 concurrent",
  baseline: true,
}, async () => {
  const replies = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => bareEchoes[i % 4].echo(encodeU32(i))),
  );
  if (replies.length !== 1000) throw new Error("lost");
});

globalThis.addEventListener("unload", () => {
  bareSab.close();
  bareEcho.close();
  for (const b of bareEchoes) b.close();
  engine.close();
  loader.close();
});
