/**
 * The capsule SDK's costs, each beside a baseline measured in the same run (deno bench prints
 * the ratio; goals in the group's first bench name):
 *
 * - build time of the `hello` capsule (`astrid capsule new hello --template tool`), uncached,
 *   vs compiling a bare AssemblyScript module (no SDK, no json-as, no transform) with the same
 *   flags in the same compiler — the figure is reported, the ratio shows what the SDK adds;
 * - wasm size of `hello`, optimised (goal < 50 KB), printed beside the bare module's;
 * - SDK call overhead: `time.nowMs()` ×10,000 (in-worker `clock_ms`) and `kv.get()` ×1,000
 *   (kernel-routed `kv_get`) from AssemblyScript, vs the same raw ABI calls from hand-written
 *   WAT, both in the same engine — goal ≤ 1.5×.
 *
 * Run: deno bench -A bench/sdk_bench.ts
 */
import { join } from "node:path";
import { encodeReply, encodeU32 } from "../host_abi/encoding.ts";
import { HostStatus } from "../host_abi/status.ts";
import { type HostHandler, WasmEngine } from "../kernel/capsule/engine/wasm/mod.ts";
import {
  buildCapsule,
  compileBareModule,
  compileCapsule,
  scaffoldCapsule,
} from "../sdk/build/mod.ts";
import { wat } from "./wasm_engine_fixtures.ts";

const root = await Deno.makeTempDir({ prefix: "astrid-sdk-bench-" });
const hello = join(root, "hello");
await scaffoldCapsule(hello, "hello", { template: "tool" });
const helloBuild = await buildCapsule(hello, { cacheDir: null });

const BARE = "export function add(a: i32, b: i32): i32 { return a + b; }\n";
async function compileBare(): Promise<Uint8Array> {
  return await compileBareModule(BARE);
}
const bare = await compileBare();
console.log(
  `hello: ${(helloBuild.wasmBytes / 1024).toFixed(1)} KB optimised wasm (goal < 50 KB), ` +
    `archive ${(helloBuild.archive.length / 1024).toFixed(1)} KB, first build ${
      Math.round(helloBuild.ms)
    } ms; ` +
    `bare AssemblyScript module: ${(bare.length / 1024).toFixed(1)} KB`,
);

// The call-overhead guests: the same loops, through the SDK and by hand.
const sdkGuest = join(root, "guest");
await Deno.mkdir(join(sdkGuest, "assembly"), { recursive: true });
await Deno.writeTextFile(
  join(sdkGuest, "assembly", "index.ts"),
  `import { kv, runtime, time } from "@astrid/sdk";
let sink: u64 = 0;
function count(ptr: usize, len: usize): u32 { return load<u32>(changetype<usize>(runtime.takePayload(ptr, len))); }
export function clock_loop(ptr: usize, len: usize): u64 {
  const n = count(ptr, len);
  for (let i: u32 = 0; i < n; i++) sink += time.nowMs();
  return 0;
}
export function kv_loop(ptr: usize, len: usize): u64 {
  const n = count(ptr, len);
  for (let i: u32 = 0; i < n; i++) sink += <u64>kv.get("k").unwrap().byteLength;
  return 0;
}
`,
);
const sdkWasm = (await compileCapsule(sdkGuest)).wasm;
const rawWasm = wat(`(module
  (import "astrid" "clock_ms" (func $clock_ms (param i32 i32) (result i64)))
  (import "astrid" "kv_get" (func $kv_get (param i32 i32) (result i64)))
  (memory (export "memory") 2)
  (data (i32.const 64) "\\01\\00\\00\\00k")
  (global $heap (mut i32) (i32.const 1024))
  (global $sink (mut i64) (i64.const 0))
  (func (export "astrid_alloc") (param $len i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $len)) (i32.const 131072))
      (then (global.set $heap (i32.const 1024))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "clock_loop") (param $p i32) (param $l i32) (result i64)
    (local $n i32) (local $i i32) (local $r i64)
    (local.set $n (i32.load (local.get $p)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $r (call $clock_ms (i32.const 0) (i32.const 0)))
      (global.set $sink (i64.add (global.get $sink)
        (i64.load offset=4 (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.const 0))
  (func (export "kv_loop") (param $p i32) (param $l i32) (result i64)
    (local $n i32) (local $i i32) (local $r i64)
    (local.set $n (i32.load (local.get $p)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $r (call $kv_get (i32.const 64) (i32.const 5)))
      (global.set $sink (i64.add (global.get $sink)
        (i64.extend_i32_u (i32.wrap_i64 (local.get $r)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.const 0)))`);

const REPLY = encodeReply(HostStatus.OK, new Uint8Array(16).fill(1));
const handler: HostHandler = () => Promise.resolve(REPLY);
const engine = new WasmEngine({
  hostFunctions: [
    { name: "clock_ms", inWorker: true },
    { name: "random_bytes", inWorker: true },
    { name: "log", inWorker: true },
    { name: "kv_get" },
  ],
  handler,
  idleCheckMs: 0,
});
const sdk = await engine.load("sdk", sdkWasm);
const raw = await engine.load("raw", rawWasm);
const CTX = { context: { principal: "default" } };
const CLOCK_CALLS = 10_000;
const KV_CALLS = 1_000;

Deno.bench("astrid build hello, uncached (report; ratio = what the SDK adds)", {
  group: "build",
  n: 3,
  warmup: 1,
}, async () => {
  await buildCapsule(hello, { cacheDir: null });
});
Deno.bench("asc: a bare AssemblyScript module, same flags", {
  group: "build",
  baseline: true,
  n: 3,
  warmup: 1,
}, async () => {
  await compileBare();
});

Deno.bench(`in-worker call ×${CLOCK_CALLS}: time.nowMs() through the SDK (goal ≤ 1.5×)`, {
  group: "in-worker call",
}, async () => {
  await sdk.invoke("clock_loop", encodeU32(CLOCK_CALLS), CTX);
});
Deno.bench(`in-worker call ×${CLOCK_CALLS}: raw clock_ms from WAT`, {
  group: "in-worker call",
  baseline: true,
}, async () => {
  await raw.invoke("clock_loop", encodeU32(CLOCK_CALLS), CTX);
});

Deno.bench(`kernel-routed call ×${KV_CALLS}: kv.get() through the SDK (goal ≤ 1.5×)`, {
  group: "kernel-routed call",
}, async () => {
  await sdk.invoke("kv_loop", encodeU32(KV_CALLS), CTX);
});
Deno.bench(`kernel-routed call ×${KV_CALLS}: raw kv_get from WAT`, {
  group: "kernel-routed call",
  baseline: true,
}, async () => {
  await raw.invoke("kv_loop", encodeU32(KV_CALLS), CTX);
});

globalThis.addEventListener("unload", () => {
  engine.close();
  Deno.removeSync(root, { recursive: true });
});
