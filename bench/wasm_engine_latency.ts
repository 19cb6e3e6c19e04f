/**
 * Percentiles of the WebAssembly engine's latencies, each beside its baseline measured in the
 * same run, with the goal printed (deno bench gives averages only):
 *
 * - kernel-routed host call: the gap between consecutive calls as the kernel sees them (one full
 *   round trip each), vs a bare SAB/Atomics round trip written the same way — goal ≤ 1.5×,
 *   p50 ≤ 25 µs;
 * - in-worker host call: mean per call over a guest loop vs a bare main-thread import — ≤ 5×;
 * - warm invocation round trip vs a bare postMessage echo — goal p50 ≤ 100 µs;
 * - cold load of a ~200 KB module vs compile + bare worker + instantiate — goal p50 ≤ 50 ms;
 * - 1,000 concurrent invocations across 4 capsules — asserted none lost.
 *
 * Run: deno run -A bench/wasm_engine_latency.ts [--spin=µs] [--kernel-spin=µs]
 */
import { parseArgs } from "node:util";
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
  percentiles,
} from "./wasm_engine_fixtures.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { spin: { type: "string" }, "kernel-spin": { type: "string" } },
});
const limits = {
  ...(values.spin !== undefined ? { spinMicros: Number(values.spin) } : {}),
  ...(values["kernel-spin"] !== undefined
    ? { kernelSpinMicros: Number(values["kernel-spin"]) }
    : {}),
};

const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
const msf = (ms: number) => `${ms.toFixed(1)} ms`;

function report(
  title: string,
  goal: string,
  engine: number[],
  baseline: number[],
  fmt: (ms: number) => string,
): void {
  const e = percentiles(engine);
  const b = percentiles(baseline);
  console.log(`\n${title}  (goal: ${goal})`);
  console.log(`  engine   p50 ${fmt(e.p50)}  p90 ${fmt(e.p90)}  p99 ${fmt(e.p99)}  (n=${e.n})`);
  console.log(`  baseline p50 ${fmt(b.p50)}  p90 ${fmt(b.p90)}  p99 ${fmt(b.p99)}  (n=${b.n})`);
  console.log(`  ratio    p50 ${(e.p50 / b.p50).toFixed(2)}×  p90 ${(e.p90 / b.p90).toFixed(2)}×`);
}

/** Records the gaps between consecutive calls seen by the kernel side. */
function gapRecorder(): { mark: () => void; take: () => number[] } {
  let last = 0;
  let gaps: number[] = [];
  return {
    mark: () => {
      const now = performance.now();
      if (last !== 0) gaps.push(now - last);
      last = now;
    },
    take: () => {
      const out = gaps;
      gaps = [];
      last = 0;
      return out;
    },
  };
}

const engineGaps = gapRecorder();
const engine = benchEngine({ onCall: engineGaps.mark, limits });
const capsule = await engine.load("bench", BENCH_GUEST);
console.log(
  `spinMicros ${engine.limits.spinMicros}, kernelSpinMicros ${engine.limits.kernelSpinMicros}`,
);

// Kernel-routed host call: alternate rounds so both see the same machine state.
const bareGaps = gapRecorder();
const bare = await BareSabRoundTrip.start({
  spinMicros: engine.limits.spinMicros,
  kernelSpinMicros: engine.limits.kernelSpinMicros,
  onCall: bareGaps.mark,
});
const routed: number[] = [];
const bareRouted: number[] = [];
for (let round = 0; round < 20; round++) {
  await loopOn(capsule, "host_loop", 1000);
  routed.push(...engineGaps.take());
  await bare.run(1000);
  bareRouted.push(...bareGaps.take());
}
report("kernel-routed host call round trip", "≤ 1.5× bare, p50 ≤ 25 µs", routed, bareRouted, us);
bare.close();

// In-worker host call: mean per call over 20,000-call loops.
const importLoop = bareImportLoop();
const inWorker: number[] = [];
const bareImport: number[] = [];
for (let round = 0; round < 30; round++) {
  let t = performance.now();
  await loopOn(capsule, "clock_loop", 20_000);
  inWorker.push((performance.now() - t) / 20_000);
  t = performance.now();
  importLoop(20_000);
  bareImport.push((performance.now() - t) / 20_000);
}
report(
  "in-worker host call (mean per call per loop)",
  "≤ 5× a bare import",
  inWorker,
  bareImport,
  (ms) => `${(ms * 1e6).toFixed(0)} ns`,
);

// Warm invocation round trip.
const echo = await bareEchoWorker();
const payload = new Uint8Array(16).fill(3);
const warm: number[] = [];
const bareWarm: number[] = [];
for (let i = 0; i < 3000; i++) {
  let t = performance.now();
  await capsule.invoke("echo", payload, CTX);
  warm.push(performance.now() - t);
  t = performance.now();
  await echo.echo(payload);
  bareWarm.push(performance.now() - t);
}
report("warm invocation round trip (16 bytes)", "p50 ≤ 100 µs", warm, bareWarm, us);
echo.close();

// Cold load of a ~200 KB module (a fresh hash each time: nothing cached).
const size = bigModule(0).length;
const cold: number[] = [];
const bareCold: number[] = [];
for (let i = 0; i < 30; i++) {
  const bytes = bigModule(i + 1);
  let t = performance.now();
  const c = await engine.load(`cold${i}`, bytes);
  cold.push(performance.now() - t);
  c.close();
  const other = bigModule(i + 1000);
  t = performance.now();
  await bareColdLoad(other);
  bareCold.push(performance.now() - t);
}
report(`cold load of a ${(size / 1024).toFixed(0)} KB module`, "p50 ≤ 50 ms", cold, bareCold, msf);

// 1,000 concurrent invocations across 4 capsules.
const four = await Promise.all(
  ["c0", "c1", "c2", "c3"].map((n) => engine.load(n, BENCH_GUEST, { pool: { maxInstances: 2 } })),
);
const bares = await Promise.all([0, 1, 2, 3].map(() => bareEchoWorker()));
const burst: number[] = [];
const bareBurst: number[] = [];
for (let round = 0; round < 10; round++) {
  let t = performance.now();
  const replies = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => four[i % 4].invoke("echo", encodeU32(i), CTX)),
  );
  burst.push(performance.now() - t);
  replies.forEach((r, i) => {
    if (new DataView(r.buffer, r.byteOffset, 4).getUint32(0, true) !== i) {
      throw new Error(`Invocation ${i} lost or mixed up`);
    }
  });
  t = performance.now();
  await Promise.all(Array.from({ length: 1000 }, (_, i) => bares[i % 4].echo(encodeU32(i))));
  bareBurst.push(performance.now() - t);
}
report(
  "1,000 concurrent invocations across 4 capsules (none lost: asserted)",
  "complete",
  burst,
  bareBurst,
  msf,
);
for (const b of bares) b.close();

await engine.close();
