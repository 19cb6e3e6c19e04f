/**
 * Proves that hostile capsules fail alone: an infinite loop, `memory.grow` to 4 GiB, an import
 * outside the host ABI table, a reply pointer outside memory, a 100 MB reply and a reentrancy
 * storm each fail with a clear error, while a well-behaved capsule in another pool keeps
 * answering correct results throughout (its calls interleave with every hostile one, and its
 * answers cross the kernel's host-call channel too).
 */
import assert from "node:assert/strict";
import wabtInit from "wabt";
import { decodeReply, decodeText, encodeReply, encodeU32 } from "../host_abi/encoding.ts";
import { HostStatus } from "../host_abi/status.ts";
import {
  EngineCode,
  EngineError,
  type HostHandler,
  type WasmCapsule,
  WasmEngine,
} from "../kernel/capsule/engine/wasm/mod.ts";

const wabt = await wabtInit();

function wat(text: string): Uint8Array {
  const module = wabt.parseWat("hostile.wat", text);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** A memory, a bump allocator (wrapping at the memory's end) and `$pack(ptr, len)`. */
const RUNTIME = `
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "astrid_alloc") (param $len i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $len)) (i32.const 65536))
      (then (global.set $heap (i32.const 1024))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (local.get $p))
  (func $pack (param $p i32) (param $l i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $l))))
  (func $reply_i32 (param $v i32) (result i64)
    (local $p i32)
    (local.set $p (call $alloc (i32.const 4)))
    (i32.store (local.get $p) (local.get $v))
    (call $pack (local.get $p) (i32.const 4)))
`;

const HOST = `(import "astrid" "call_host" (func $call_host (param i32 i32) (result i64)))`;

/** Well behaved: asks the kernel to transform its payload and returns the answer. */
const STEADY = wat(`(module ${HOST} ${RUNTIME}
  (func (export "transform") (param $p i32) (param $l i32) (result i64)
    (call $call_host (local.get $p) (local.get $l))))`);

const LOOPER = wat(`(module ${RUNTIME}
  (func (export "spin") (param i32 i32) (result i64) (loop $forever (br $forever)) (i64.const 0))
  (func (export "ok") (param $p i32) (param $l i32) (result i64) (call $pack (local.get $p) (local.get $l))))`);

const GROWER = wat(`(module
  (memory (export "memory") 1 65536)
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "astrid_alloc") (param $len i32) (result i32) (i32.const 1024))
  (func $reply_i32 (param $v i32) (result i64)
    (i32.store (i32.const 1024) (local.get $v))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 4)))
  (func (export "grow_4gib") (param i32 i32) (result i64)
    (call $reply_i32 (memory.grow (i32.sub (i32.const 65536) (memory.size)))))
  (func (export "grow_until_refused") (param i32 i32) (result i64)
    (loop $more (br_if $more (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0))))
    (call $reply_i32 (memory.size)))
  (func (export "grow_or_die") (param i32 i32) (result i64)
    (if (i32.lt_s (memory.grow (i32.const 65535)) (i32.const 0)) (then (unreachable)))
    (i64.const 0)))`);

const UNKNOWN_IMPORT = wat(`(module
  (import "astrid" "fs_chmod" (func (param i32 i32) (result i64)))
  (func (export "chmod") (param i32 i32) (result i64) (i64.const 0)))`);

const LIAR = wat(`(module ${RUNTIME}
  (func (export "outside") (param i32 i32) (result i64) (call $pack (i32.const 0xFFFF0000) (i32.const 64)))
  (func (export "straddle") (param i32 i32) (result i64) (call $pack (i32.const 65530) (i32.const 64)))
  (func (export "hundred_mb") (param i32 i32) (result i64) (call $pack (i32.const 0) (i32.const 104857600))))`);

/** Each invocation makes a host call that the kernel answers by invoking this capsule again. */
const STORM = wat(`(module ${HOST} ${RUNTIME}
  (func (export "storm") (param $p i32) (param $l i32) (result i64)
    (call $call_host (local.get $p) (local.get $l))))`);

const ctx = { context: { principal: "default" } };

function isEngineError(code: string, re?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (re !== undefined) assert.match(err.message, re);
    return true;
  };
}

function i32Of(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, true);
}

Deno.test("hostile capsules fail alone while a well-behaved capsule keeps answering", async (t) => {
  let storm: WasmCapsule | undefined;
  let stormDepth = 0;
  let deepest = 0;
  const handler: HostHandler = async (fn, request, call) => {
    assert.equal(fn, "call_host");
    if (call.capsule === "steady") {
      // The well-behaved capsule's answer: its payload reversed, XOR 0xff.
      return encodeReply(HostStatus.OK, request.slice().reverse().map((b) => b ^ 0xff));
    }
    // The storm: every host call invokes the same capsule again.
    stormDepth++;
    deepest = Math.max(deepest, stormDepth);
    try {
      return await storm!.invoke("storm", request, { context: call.context, signal: call.signal });
    } catch (err) {
      if (err instanceof EngineError && err.code === EngineCode.WASM_LIMIT_EXCEEDED) {
        return encodeReply(HostStatus.LIMIT_EXCEEDED, err.message);
      }
      throw err;
    } finally {
      stormDepth--;
    }
  };
  const engine = new WasmEngine({
    hostFunctions: [{ name: "call_host" }],
    handler,
    idleCheckMs: 0,
  });
  try {
    const steady = await engine.load("steady", STEADY);
    let steadyCalls = 0;
    const check = async () => {
      const n = steadyCalls++;
      const payload = encodeU32(n);
      const reply = decodeReply(await steady.invoke("transform", payload, ctx));
      assert.equal(reply.status, HostStatus.OK);
      assert.deepEqual(
        reply.body,
        payload.slice().reverse().map((b) => b ^ 0xff),
        `steady call ${n}`,
      );
    };
    /** Runs `hostile` while the steady capsule answers in a loop beside it; both must hold. */
    const alongside = async <T>(hostile: () => Promise<T>): Promise<T> => {
      await check();
      let done = false;
      const chatter = (async () => {
        let n = 0;
        do {
          await check();
          n++;
        } while (!done);
        return n;
      })();
      try {
        return await hostile();
      } finally {
        done = true;
        assert.ok((await chatter) >= 1);
        await check();
      }
    };

    await t.step(
      "an infinite loop times out; its worker is replaced and answers next",
      async () => {
        const looper = await engine.load("looper", LOOPER, { timeoutMs: 300 });
        await alongside(() =>
          assert.rejects(
            looper.invoke("spin", new Uint8Array(0), ctx),
            isEngineError(
              EngineCode.WASM_TIMEOUT,
              /^Capsule "looper" failed in export "spin": timed out after 300 ms/,
            ),
          )
        );
        assert.deepEqual(await looper.invoke("ok", Uint8Array.of(1, 2), ctx), Uint8Array.of(1, 2));
        assert.equal(looper.stats().spawned, 2, "one replacement worker");
      },
    );

    await t.step("memory.grow to 4 GiB returns -1; a guest that insists fails alone", async () => {
      const grower = await engine.load("grower", GROWER);
      await alongside(async () => {
        assert.equal(i32Of(await grower.invoke("grow_4gib", new Uint8Array(0), ctx)), -1);
        assert.equal(
          i32Of(await grower.invoke("grow_until_refused", new Uint8Array(0), ctx)),
          1024,
        );
        await assert.rejects(
          grower.invoke("grow_or_die", new Uint8Array(0), ctx),
          isEngineError(EngineCode.WASM_TRAP, /trapped: unreachable$/),
        );
      });
      assert.equal(i32Of(await grower.invoke("grow_4gib", new Uint8Array(0), ctx)), -1);
    });

    await t.step("an import outside the host ABI table is refused at load", async () => {
      await alongside(() =>
        assert.rejects(
          engine.load("chmod", UNKNOWN_IMPORT),
          isEngineError(
            EngineCode.WASM_IMPORT_DENIED,
            /^Cannot load capsule "chmod": import "astrid\.fs_chmod" is not in the host ABI table$/,
          ),
        )
      );
    });

    await t.step("a reply pointer outside memory is WASM_BAD_REPLY", async () => {
      const liar = await engine.load("liar", LIAR);
      await alongside(async () => {
        await assert.rejects(
          liar.invoke("outside", new Uint8Array(0), ctx),
          isEngineError(
            EngineCode.WASM_BAD_REPLY,
            /the reply \(ptr 4294901760, len 64\) lies outside guest memory of 65536 bytes$/,
          ),
        );
        await assert.rejects(
          liar.invoke("straddle", new Uint8Array(0), ctx),
          isEngineError(EngineCode.WASM_BAD_REPLY, /the reply \(ptr 65530, len 64\) lies outside/),
        );
      });
    });

    await t.step("a 100 MB reply is LIMIT_EXCEEDED", async () => {
      const liar = await engine.load("liar-big", LIAR);
      await alongside(() =>
        assert.rejects(
          liar.invoke("hundred_mb", new Uint8Array(0), ctx),
          isEngineError(
            EngineCode.WASM_LIMIT_EXCEEDED,
            /^Capsule "liar-big" failed in export "hundred_mb": the reply is 104857600 bytes: the limit is 16777216 bytes$/,
          ),
        )
      );
    });

    await t.step(
      "a reentrancy storm unwinds with LIMIT_EXCEEDED instead of deadlocking",
      async () => {
        storm = await engine.load("storm", STORM, {
          pool: { minInstances: 1, maxInstances: 3, reentrantQueueTimeoutMs: 200 },
        });
        const reply = await alongside(() => storm!.invoke("storm", Uint8Array.of(1), ctx));
        const decoded = decodeReply(reply);
        assert.equal(decoded.status, HostStatus.LIMIT_EXCEEDED);
        assert.match(
          decodeText(decoded.body),
          /^Capsule "storm" is busy: all 3 instances stayed in use for 200 ms \(a reentrant call/,
        );
        assert.equal(deepest, 3, "the storm spilled to every instance up to the maximum");
        assert.equal(stormDepth, 0);
        assert.deepEqual(storm.stats().busy, 0, "every instance came back");
      },
    );

    assert.ok(steadyCalls >= 20, `the steady capsule answered ${steadyCalls} calls`);
  } finally {
    await engine.close();
  }
});
