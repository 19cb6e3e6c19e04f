import assert from "node:assert/strict";
import { ManualClock } from "../../../clock.ts";
import {
  decodeReply,
  decodeText,
  encodeFields,
  encodeReply,
  encodeU32,
} from "../../../../host_abi/encoding.ts";
import { HostCallError, HostStatus } from "../../../../host_abi/status.ts";
import {
  EngineCode,
  EngineError,
  type GuestLogEntry,
  type HostCall,
  type HostHandler,
  type InvocationContext,
  WasmEngine,
  type WasmEngineOptions,
} from "./mod.ts";
import { forward, guest, wat } from "./_test_guests.ts";
import { ManualTimers as ManualEngineTimers } from "../../../events/mod.ts";

const FUNCTIONS = [
  { name: "clock_ms", inWorker: true },
  { name: "random_bytes", inWorker: true },
  { name: "log", inWorker: true },
  { name: "call_host" },
  { name: "ipc_recv" },
];

/** A guest exercising every path: forwards to host functions, traps, loops, bad replies. */
const KITCHEN = guest(
  `
  ${forward("host", "call_host")}
  ${forward("clock", "clock_ms")}
  ${forward("random", "random_bytes")}
  ${forward("log", "log")}
  (func (export "trap") (param i32 i32) (result i64) (unreachable))
  (func (export "spin") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))
  (func (export "bad_reply") (param i32 i32) (result i64)
    (call $pack (i32.const 0xFFFFFF00) (i32.const 16)))
  (func (export "huge_reply") (param i32 i32) (result i64)
    (call $pack (i32.const 0) (i32.const 104857600)))
  (func (export "bad_request") (param i32 i32) (result i64)
    (call $call_host (i32.const 0x7FFFFFF0) (i32.const 64)))
  (func (export "grow") (param i32 i32) (result i64) (call $reply_i32 (memory.grow (i32.const 65535))))
  (func (export "pages") (param i32 i32) (result i64) (call $reply_i32 (memory.size)))
  (func (export "not_handler") (param i32) (result i32) (local.get 0))
  (func (export "log_then_host") (param $p i32) (param $l i32) (result i64)
    (drop (call $log (local.get $p) (local.get $l)))
    (call $call_host (i32.const 0) (i32.const 0)))
  (func (export "log_many") (param $p i32) (param $l i32) (result i64)
    (local $i i32)
    (loop $again
      (drop (call $log (local.get $p) (local.get $l)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 10))))
    (i64.const 0))
  (func (export "astrid_run") (param i32 i32) (result i64)
    (local $r i64) (local $n i32)
    (loop $next
      (local.set $r (call $ipc_recv (i32.const 0) (i32.const 0)))
      (if (i32.eqz (i32.load (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32)))))
        (then (local.set $n (i32.add (local.get $n) (i32.const 1))) (br $next))))
    (call $reply_i32 (local.get $n)))
`,
  { fns: ["clock_ms", "random_bytes", "log", "call_host", "ipc_recv"] },
);

const ctx = { context: { principal: "alice", requestId: "r1" } };

function engineWith(options: Partial<WasmEngineOptions> = {}): WasmEngine {
  return new WasmEngine({ hostFunctions: FUNCTIONS, idleCheckMs: 0, ...options });
}

function isEngineError(code: string, re?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (re !== undefined) assert.match(err.message, re);
    return true;
  };
}

/** Resolves once an invocation has armed its timeout (it is running in its worker). */
async function untilRunning(timers: ManualEngineTimers): Promise<void> {
  while (timers.pending === 0) await new Promise((r) => setTimeout(r, 1));
}

function i32Of(reply: Uint8Array): number {
  return new DataView(reply.buffer, reply.byteOffset, 4).getInt32(0, true);
}

function text(reply: Uint8Array): { status: number; text: string } {
  const r = decodeReply(reply);
  return { status: r.status, text: decodeText(r.body) };
}

Deno.test("WasmEngine.load() refuses imports outside the host ABI table", async (t) => {
  const engine = engineWith();
  try {
    const cases: [string, string, string, RegExp][] = [
      [
        "an unknown astrid function",
        `(import "astrid" "fs_chmod" (func (param i32 i32) (result i64)))`,
        EngineCode.WASM_IMPORT_DENIED,
        /^Cannot load capsule "x": import "astrid\.fs_chmod" is not in the host ABI table$/,
      ],
      [
        "another module",
        `(import "env" "foo" (func))`,
        EngineCode.WASM_IMPORT_DENIED,
        /^Cannot load capsule "x": import "env\.foo" is not allowed: capsules import only from "astrid"$/,
      ],
      [
        "AssemblyScript's env.abort",
        `(import "env" "abort" (func (param i32 i32 i32 i32)))`,
        EngineCode.WASM_IMPORT_DENIED,
        /import "env\.abort" is not allowed/,
      ],
      [
        "a table function of the wrong type",
        `(import "astrid" "clock_ms" (func (result i64)))`,
        EngineCode.WASM_IMPORT_DENIED,
        /import "astrid\.clock_ms" has type \(\) -> i64, expected \(i32, i32\) -> i64$/,
      ],
      [
        "a global",
        `(import "astrid" "g" (global i32))`,
        EngineCode.WASM_IMPORT_DENIED,
        /import "astrid\.g" is a global: capsules import only host functions and "astrid\.memory"$/,
      ],
      [
        "a memory under another name",
        `(import "astrid" "heap" (memory 1))`,
        EngineCode.WASM_IMPORT_DENIED,
        /the only memory a capsule may import is "astrid\.memory"$/,
      ],
      [
        "a memory that is not exported",
        `(memory 1)`,
        EngineCode.WASM_LOAD,
        /defines a memory but does not export it as "memory"/,
      ],
      [
        "an astrid_alloc of the wrong type",
        `(func (export "astrid_alloc") (param i64) (result i32) (i32.const 0))`,
        EngineCode.WASM_LOAD,
        /export "astrid_alloc" has type \(i64\) -> i32, expected \(i32\) -> i32$/,
      ],
      [
        "a memory minimum of 2048 pages",
        `(memory (export "memory") 2048)`,
        EngineCode.WASM_MEMORY_LIMIT,
        /memory minimum 2048 pages \(128 MiB\) exceeds the limit of 1024 pages \(64 MiB\)$/,
      ],
      [
        "a body that does not validate",
        `(func (export "f") (result i32) (i64.const 0))`,
        EngineCode.WASM_LOAD,
        /^Cannot load capsule "x": compile failed: /,
      ],
    ];
    for (const [name, body, code, re] of cases) {
      await t.step(name, async () => {
        await assert.rejects(engine.load("x", wat(`(module ${body})`)), isEngineError(code, re));
      });
    }
    assert.equal(engine.cachedModules, 0, "failures are not cached");
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.invoke() answers kernel-routed host calls with the invocation's context", async (t) => {
  const calls: { fn: string; request: Uint8Array; call: HostCall }[] = [];
  const errors: unknown[] = [];
  let answer: HostHandler = (fn, request, call) => {
    calls.push({ fn, request: request.slice(), call });
    return Promise.resolve(encodeReply(HostStatus.OK, Uint8Array.of(...request, 42)));
  };
  const engine = engineWith({
    handler: (fn, request, call) => answer(fn, request, call),
    onHostError: (err) => errors.push(err),
    limits: { maxReplyBytes: 1024, maxRequestBytes: 512 },
  });
  try {
    const capsule = await engine.load("kitchen", KITCHEN);
    assert.equal(capsule.hash.startsWith("blake3:"), true);
    assert.ok(capsule.handlers.has("host") && !capsule.handlers.has("astrid_alloc"));

    await t.step("echo without host calls", async () => {
      assert.deepEqual(
        await capsule.invoke("echo", Uint8Array.of(1, 2, 3), ctx),
        Uint8Array.of(1, 2, 3),
      );
      assert.deepEqual(await capsule.invoke("echo", new Uint8Array(0), ctx), new Uint8Array(0));
    });

    await t.step("the handler gets the name, bytes and context", async () => {
      const reply = decodeReply(await capsule.invoke("host", Uint8Array.of(7, 8), ctx));
      assert.deepEqual(reply, { status: 0, body: Uint8Array.of(7, 8, 42) });
      assert.equal(calls[0].fn, "call_host");
      assert.deepEqual(calls[0].request, Uint8Array.of(7, 8));
      assert.equal(calls[0].call.capsule, "kitchen");
      assert.equal(calls[0].call.exportName, "host");
      assert.deepEqual(calls[0].call.context, { principal: "alice", requestId: "r1" });
      assert.equal(calls[0].call.signal.aborted, true, "aborted once the invocation ended");
    });

    await t.step("a HostCallError answers its status and message", async () => {
      answer = () =>
        Promise.reject(new HostCallError(HostStatus.DENIED, 'Capability "kv" is not declared'));
      assert.deepEqual(text(await capsule.invoke("host", new Uint8Array(0), ctx)), {
        status: HostStatus.DENIED,
        text: 'Capability "kv" is not declared',
      });
    });

    await t.step("any other error answers INTERNAL and is reported, not leaked", async () => {
      answer = () => Promise.reject(new Error("secret database path /var/x"));
      assert.deepEqual(text(await capsule.invoke("host", new Uint8Array(0), ctx)), {
        status: HostStatus.INTERNAL,
        text: 'Host function "astrid.call_host" failed unexpectedly',
      });
      assert.match(String(errors[0]), /secret database path/);
    });

    await t.step("a host reply over maxReplyBytes answers LIMIT_EXCEEDED", async () => {
      answer = () => Promise.resolve(encodeReply(HostStatus.OK, new Uint8Array(2000)));
      assert.deepEqual(text(await capsule.invoke("host", new Uint8Array(0), ctx)), {
        status: HostStatus.LIMIT_EXCEEDED,
        text: 'Reply of "astrid.call_host" is 2004 bytes: the limit is 1024 bytes',
      });
    });

    await t.step("a payload over maxRequestBytes fails before reaching a worker", async () => {
      const before = calls.length;
      await assert.rejects(
        capsule.invoke("host", new Uint8Array(513), ctx),
        isEngineError(
          EngineCode.WASM_LIMIT_EXCEEDED,
          /^Cannot invoke "kitchen\.host": the payload is 513 bytes, the limit is 512 bytes$/,
        ),
      );
      assert.equal(calls.length, before);
    });

    await t.step("an empty host reply reads as OK", async () => {
      answer = () => Promise.resolve(new Uint8Array(0));
      assert.deepEqual(await capsule.invoke("host", Uint8Array.of(1), ctx), new Uint8Array(0));
    });
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.invoke() refuses a host request over the cap with LIMIT_EXCEEDED", async () => {
  let called = 0;
  const engine = engineWith({
    handler: () => {
      called++;
      return Promise.resolve(new Uint8Array(0));
    },
    limits: { maxRequestBytes: 100 },
  });
  try {
    // The guest sends 200 bytes of its own memory as a request.
    const capsule = await engine.load(
      "big-request",
      guest(
        `(func (export "send") (param i32 i32) (result i64) (call $call_host (i32.const 1024) (i32.const 200)))`,
        { fns: ["call_host"] },
      ),
    );
    assert.deepEqual(text(await capsule.invoke("send", new Uint8Array(0), ctx)), {
      status: HostStatus.LIMIT_EXCEEDED,
      text: 'Request to "astrid.call_host" is 200 bytes: the limit is 100 bytes',
    });
    assert.equal(called, 0);
  } finally {
    await engine.close();
  }
});

Deno.test("The host channel carries requests and replies larger than itself in chunks", async () => {
  const engine = engineWith({
    handler: (_fn, request) => {
      const body = new Uint8Array(request.length * 3).map((_, i) =>
        request[i % request.length] ^ 0x5a
      );
      return Promise.resolve(encodeReply(HostStatus.OK, body));
    },
    limits: { channelBytes: 4096 + 32 },
  });
  try {
    const capsule = await engine.load("chunky", KITCHEN);
    for (const size of [0, 1, 4095, 4096, 4097, 100_000]) {
      const payload = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
      const reply = decodeReply(await capsule.invoke("host", payload, ctx));
      assert.equal(reply.status, 0);
      assert.equal(reply.body.length, size * 3, `size ${size}`);
      for (let i = 0; i < reply.body.length; i += 997) {
        assert.equal(reply.body[i], payload[i % size] ^ 0x5a, `size ${size} byte ${i}`);
      }
    }
  } finally {
    await engine.close();
  }
});

Deno.test("clock_ms, random_bytes and log are answered inside the worker", async (t) => {
  let kernelCalls = 0;
  const logs: { entries: readonly GuestLogEntry[]; capsule: string; call?: HostCall }[] = [];
  const engine = engineWith({
    handler: () => {
      kernelCalls++;
      return Promise.resolve(new Uint8Array(0));
    },
    onLog: (entries, source) => logs.push({ entries, ...source }),
    limits: { maxRandomBytes: 4096, maxLogLineBytes: 16, logBufferBytes: 200 },
  });
  try {
    const capsule = await engine.load("local", KITCHEN);

    await t.step("clock_ms answers OK || u64le milliseconds", async () => {
      const before = Date.now();
      const reply = decodeReply(await capsule.invoke("clock", new Uint8Array(0), ctx));
      const ms = Number(
        new DataView(reply.body.buffer, reply.body.byteOffset, 8).getBigUint64(0, true),
      );
      assert.equal(reply.status, 0);
      assert.equal(reply.body.length, 8);
      assert.ok(ms >= before && ms <= Date.now(), `${ms} within the call`);
    });

    await t.step("random_bytes answers fresh CSPRNG bytes, capped", async () => {
      const a = decodeReply(await capsule.invoke("random", encodeFields([encodeU32(64)]), ctx));
      const b = decodeReply(await capsule.invoke("random", encodeFields([encodeU32(64)]), ctx));
      assert.equal(a.status, 0);
      assert.equal(a.body.length, 64);
      assert.notDeepEqual(a.body, b.body);
      assert.deepEqual(text(await capsule.invoke("random", encodeFields([encodeU32(5000)]), ctx)), {
        status: HostStatus.LIMIT_EXCEEDED,
        text: 'Field "count" is 5000: the limit is 4096 bytes',
      });
      assert.deepEqual(text(await capsule.invoke("random", encodeFields(["x"]), ctx)), {
        status: HostStatus.INVALID_ARGUMENT,
        text: 'Field "count" has 1 bytes, expected 4',
      });
    });

    await t.step(
      "log lines arrive with the invocation, before its kernel-routed calls",
      async () => {
        logs.length = 0;
        assert.deepEqual(
          await capsule.invoke(
            "log_then_host",
            encodeFields(["warn", "disk almost full: 99%"]),
            ctx,
          ),
          new Uint8Array(0),
        );
        assert.equal(kernelCalls, 1);
        assert.equal(logs.length, 1, "flushed once, before the kernel call");
        assert.equal(logs[0].capsule, "local");
        assert.deepEqual(logs[0].call?.context, ctx.context);
        assert.equal(logs[0].entries[0].level, "warn");
        assert.equal(logs[0].entries[0].message, "disk almost full…[truncated]");
      },
    );

    await t.step("a full buffer flushes mid-invocation; nothing is lost", async () => {
      logs.length = 0;
      await capsule.invoke("log_many", encodeFields(["info", "0123456789"]), ctx);
      assert.ok(logs.length >= 2, `${logs.length} flushes`);
      assert.equal(logs.flatMap((l) => l.entries).length, 10);
      assert.ok(logs.every((l) => l.call?.exportName === "log_many"));
    });

    await t.step("a bad level is INVALID_ARGUMENT", async () => {
      assert.deepEqual(text(await capsule.invoke("log", encodeFields(["loud", "x"]), ctx)), {
        status: HostStatus.INVALID_ARGUMENT,
        text: 'Field "level" is "loud": expected one of trace, debug, info, warn, error',
      });
    });
    assert.equal(kernelCalls, 1, "only log_then_host crossed to the kernel");
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.invoke() fails a misbehaving invocation alone", async (t) => {
  const engine = engineWith({ limits: { maxReplyBytes: 1024 * 1024 } });
  try {
    const capsule = await engine.load("bad", KITCHEN);
    const healthy = async () =>
      assert.deepEqual(await capsule.invoke("echo", Uint8Array.of(9), ctx), Uint8Array.of(9));

    await t.step("a missing export", async () => {
      await assert.rejects(
        capsule.invoke("nope", new Uint8Array(0), ctx),
        isEngineError(
          EngineCode.WASM_NO_EXPORT,
          /^Cannot invoke "bad\.nope": the module has no export "nope"$/,
        ),
      );
      await assert.rejects(
        capsule.invoke("not_handler", new Uint8Array(0), ctx),
        isEngineError(
          EngineCode.WASM_NO_EXPORT,
          /export "not_handler" is not a handler: expected a function \(i32, i32\) -> i64$/,
        ),
      );
    });

    await t.step("a trap", async () => {
      await assert.rejects(
        capsule.invoke("trap", new Uint8Array(0), ctx),
        isEngineError(
          EngineCode.WASM_TRAP,
          /^Capsule "bad" failed in export "trap": trapped: unreachable$/,
        ),
      );
      await healthy();
    });

    await t.step("a reply region outside memory", async () => {
      await assert.rejects(
        capsule.invoke("bad_reply", new Uint8Array(0), ctx),
        isEngineError(
          EngineCode.WASM_BAD_REPLY,
          /^Capsule "bad" failed in export "bad_reply": the reply \(ptr 4294967040, len 16\) lies outside guest memory of 131072 bytes$/,
        ),
      );
      await healthy();
    });

    await t.step("a reply over the cap", async () => {
      await assert.rejects(
        capsule.invoke("huge_reply", new Uint8Array(0), ctx),
        isEngineError(
          EngineCode.WASM_LIMIT_EXCEEDED,
          /the reply is 104857600 bytes: the limit is 1048576 bytes$/,
        ),
      );
      await healthy();
    });

    await t.step("a host request region outside memory", async () => {
      await assert.rejects(
        capsule.invoke("bad_request", new Uint8Array(0), ctx),
        isEngineError(
          EngineCode.WASM_BAD_REQUEST,
          /the request to "astrid\.call_host" \(ptr 2147483632, len 64\) lies outside guest memory/,
        ),
      );
      await healthy();
    });

    await t.step("memory.grow past 64 MiB returns -1", async () => {
      assert.equal(i32Of(await capsule.invoke("grow", new Uint8Array(0), ctx)), -1);
      assert.equal(i32Of(await capsule.invoke("pages", new Uint8Array(0), ctx)), 2);
    });
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.invoke() runs the next invocation on a fresh instance after a trap", async () => {
  const engine = engineWith({ pool: { minInstances: 1, maxInstances: 1 } });
  try {
    const capsule = await engine.load(
      "counter",
      guest(`(global $n (mut i32) (i32.const 0))
        (func (export "count") (param i32 i32) (result i64)
          (global.set $n (i32.add (global.get $n) (i32.const 1)))
          (call $reply_i32 (global.get $n)))
        (func (export "trap") (param i32 i32) (result i64) (unreachable))`),
    );
    assert.equal(i32Of(await capsule.invoke("count", new Uint8Array(0), ctx)), 1);
    assert.equal(
      i32Of(await capsule.invoke("count", new Uint8Array(0), ctx)),
      2,
      "warm state is kept",
    );
    await assert.rejects(
      capsule.invoke("trap", new Uint8Array(0), ctx),
      isEngineError(EngineCode.WASM_TRAP),
    );
    assert.equal(
      i32Of(await capsule.invoke("count", new Uint8Array(0), ctx)),
      1,
      "state after a trap is fresh",
    );
    assert.equal(capsule.stats().spawned, 1, "re-instantiated in the same worker");
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.invoke() fails alone when astrid_alloc misbehaves", async () => {
  const engine = engineWith();
  try {
    const capsule = await engine.load(
      "alloc",
      wat(`(module (memory (export "memory") 1)
        (func (export "astrid_alloc") (param i32) (result i32) (i32.const 0xFFFFFF00))
        (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))`),
    );
    await assert.rejects(
      capsule.invoke("echo", Uint8Array.of(1), ctx),
      isEngineError(
        EngineCode.WASM_BAD_ALLOC,
        /astrid_alloc\(1\) returned 4294967040, outside guest memory of 65536 bytes$/,
      ),
    );
    assert.deepEqual(await capsule.invoke("echo", new Uint8Array(0), ctx), new Uint8Array(0));
    const none = await engine.load(
      "no-alloc",
      wat(`(module (func (export "echo") (param i32 i32) (result i64) (i64.const 0)))`),
    );
    await assert.rejects(
      none.invoke("echo", Uint8Array.of(1), ctx),
      isEngineError(
        EngineCode.WASM_BAD_ALLOC,
        /the module exports no "astrid_alloc" to receive the payload of 1 bytes$/,
      ),
    );
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.invoke() terminates and replaces a worker past its timeout", async (t) => {
  const clock = new ManualClock(0);
  const timers = new ManualEngineTimers(clock);
  let hostSignal: AbortSignal | undefined;
  const engine = engineWith({
    timers,
    clock,
    handler: (_fn, _req, call) => {
      hostSignal = call.signal;
      return new Promise(() => {}); // never answers, like a blocking receive
    },
  });
  try {
    const capsule = await engine.load("slow", KITCHEN, { timeoutMs: 1_000 });

    await t.step("an infinite loop", async () => {
      const looping = capsule.invoke("spin", new Uint8Array(0), ctx);
      await untilRunning(timers);
      timers.advance(1_000);
      await assert.rejects(
        looping,
        isEngineError(
          EngineCode.WASM_TIMEOUT,
          /^Capsule "slow" failed in export "spin": timed out after 1000 ms \(the worker was terminated and is replaced\)$/,
        ),
      );
      assert.deepEqual(await capsule.invoke("echo", Uint8Array.of(5), ctx), Uint8Array.of(5));
      assert.equal(capsule.stats().spawned, 2);
    });

    await t.step("a host call that never answers; its signal is aborted", async () => {
      const blocked = capsule.invoke("host", new Uint8Array(0), { ...ctx, timeoutMs: 50 });
      while (hostSignal === undefined) await new Promise((r) => setTimeout(r, 1));
      timers.advance(50);
      await assert.rejects(blocked, isEngineError(EngineCode.WASM_TIMEOUT, /after 50 ms/));
      assert.equal(hostSignal.aborted, true);
      assert.deepEqual(await capsule.invoke("echo", Uint8Array.of(6), ctx), Uint8Array.of(6));
    });

    await t.step("the caller's abort", async () => {
      const controller = new AbortController();
      const looping = capsule.invoke("spin", new Uint8Array(0), {
        ...ctx,
        signal: controller.signal,
      });
      await untilRunning(timers);
      controller.abort(new Error("turn cancelled"));
      await assert.rejects(
        looping,
        isEngineError(
          EngineCode.WASM_ABORTED,
          /failed in export "spin": aborted by the caller: turn cancelled$/,
        ),
      );
      assert.deepEqual(await capsule.invoke("echo", Uint8Array.of(7), ctx), Uint8Array.of(7));
    });
  } finally {
    await engine.close();
  }
});

Deno.test("WasmEngine.load() reports start-function failures", async (t) => {
  const engine = engineWith({ handler: () => Promise.resolve(encodeReply(HostStatus.OK)) });
  try {
    await t.step("a start function that traps fails the load", async () => {
      await assert.rejects(
        engine.load("boom", wat(`(module (func $s (unreachable)) (start $s))`)),
        isEngineError(
          EngineCode.WASM_TRAP,
          /^Cannot load capsule "boom": the start function trapped: unreachable$/,
        ),
      );
    });

    await t.step("a host call from the start function fails the load", async () => {
      await assert.rejects(
        engine.load(
          "early",
          guest(
            `(func $start (drop (call $call_host (i32.const 0) (i32.const 0)))) (start $start)`,
            { fns: ["call_host"] },
          ),
        ),
        isEngineError(
          EngineCode.WASM_LOAD,
          /^Cannot load capsule "early": the start function called "astrid\.call_host": host functions cannot be called before instantiation completes/,
        ),
      );
    });
  } finally {
    await engine.close();
  }

  await t.step(
    "a start function that never returns fails the load after startTimeoutMs",
    async () => {
      const clock = new ManualClock(0);
      const timers = new ManualEngineTimers(clock);
      const slow = engineWith({ timers, limits: { startTimeoutMs: 500 } });
      try {
        const loading = slow.load("hang", wat(`(module (func $s (loop $l (br $l))) (start $s))`));
        await untilRunning(timers);
        timers.advance(500);
        await assert.rejects(
          loading,
          isEngineError(
            EngineCode.WASM_LOAD,
            /^Cannot load capsule "hang": instantiation did not finish within 500 ms/,
          ),
        );
      } finally {
        await slow.close();
      }
    },
  );
});

Deno.test("WasmEngine supplies an imported astrid.memory with the 64 MiB maximum", async () => {
  const engine = engineWith();
  try {
    const capsule = await engine.load(
      "imported",
      wat(`(module (import "astrid" "memory" (memory 1 65536))
        (func (export "grow") (param i32 i32) (result i64)
          (i32.store (i32.const 8) (memory.grow (i32.const 2000)))
          (i32.store (i32.const 12) (memory.grow (i32.const 1023)))
          (i64.or (i64.shl (i64.const 8) (i64.const 32)) (i64.const 8))))`),
    );
    const reply = await capsule.invoke("grow", new Uint8Array(0), ctx);
    assert.deepEqual([i32Of(reply), i32Of(reply.subarray(4))], [-1, 1]);
  } finally {
    await engine.close();
  }
});

Deno.test("WasmEngine compiles once per hash and shares the module", async () => {
  const engine = engineWith();
  try {
    const a = await engine.load("a", KITCHEN);
    const b = await engine.load("b", KITCHEN.slice());
    assert.equal(a.hash, b.hash);
    assert.equal(engine.cachedModules, 1);
    a.close();
    assert.equal(engine.cachedModules, 1);
    assert.deepEqual(await b.invoke("echo", Uint8Array.of(1), ctx), Uint8Array.of(1));
    b.close();
    assert.equal(engine.cachedModules, 0);
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.startRunLoop() runs astrid_run on a dedicated instance with no timeout", async (t) => {
  const clock = new ManualClock(0);
  const timers = new ManualEngineTimers(clock);
  let delivered = 0;
  let release: (() => void) | undefined;
  const engine = engineWith({
    timers,
    clock,
    limits: { invokeTimeoutMs: 10 },
    handler: (fn) => {
      assert.equal(fn, "ipc_recv");
      if (delivered < 3) {
        delivered++;
        return Promise.resolve(encodeReply(HostStatus.OK, `message ${delivered}`));
      }
      return new Promise((resolve) => {
        release = () => resolve(encodeReply(HostStatus.CLOSED, "Subscription closed"));
      });
    },
  });
  try {
    const capsule = await engine.load("loop", KITCHEN, {
      pool: { minInstances: 1, maxInstances: 1 },
    });
    assert.equal(capsule.hasRunLoop, true);

    await t.step(
      "it blocks in ipc_recv past the tool timeout and returns when closed",
      async () => {
        const loop = capsule.startRunLoop({ context: { principal: "default" } });
        while (release === undefined) await new Promise((r) => setTimeout(r, 1));
        timers.advance(1_000_000);
        assert.throws(
          () => capsule.startRunLoop({ context: { principal: "default" } }),
          isEngineError(EngineCode.WASM_INVALID_OPTION, /already runs its loop/),
        );
        assert.deepEqual(
          await capsule.invoke("echo", Uint8Array.of(3), { ...ctx, timeoutMs: 1_000 }),
          Uint8Array.of(3),
        );
        assert.equal(capsule.stats().instances, 1, "the loop does not take a pool slot");
        release();
        const exit = await loop.done;
        assert.equal(exit.outcome, "returned");
        assert.equal(exit.outcome === "returned" && i32Of(exit.reply), 3);
      },
    );

    await t.step("stop() ends a blocked loop", async () => {
      release = undefined;
      const loop = capsule.startRunLoop({ context: { principal: "default" } });
      while (release === undefined) await new Promise((r) => setTimeout(r, 1));
      loop.stop();
      assert.deepEqual(await loop.done, { outcome: "stopped" });
    });
  } finally {
    await engine.close();
  }
});

Deno.test("WasmCapsule.close() fails invocations in flight and later ones with WASM_CLOSED", async () => {
  const engine = engineWith({ handler: () => new Promise(() => {}) });
  try {
    const capsule = await engine.load("closing", KITCHEN);
    const blocked = capsule.invoke("host", new Uint8Array(0), ctx);
    await new Promise((r) => setTimeout(r, 20));
    capsule.close();
    await assert.rejects(
      blocked,
      isEngineError(EngineCode.WASM_CLOSED, /was closed during an invocation$/),
    );
    await assert.rejects(
      capsule.invoke("echo", new Uint8Array(0), ctx),
      isEngineError(EngineCode.WASM_CLOSED),
    );
  } finally {
    await engine.close();
  }
  await assert.rejects(
    engine.load("late", KITCHEN),
    isEngineError(EngineCode.WASM_CLOSED, /the engine is closed$/),
  );
});

Deno.test("WasmEngine runs 1,000 concurrent invocations across 4 capsules with none lost", async () => {
  const engine = engineWith({
    handler: (_fn, request) => Promise.resolve(encodeReply(HostStatus.OK, request)),
  });
  try {
    const capsules = await Promise.all(
      ["c0", "c1", "c2", "c3"].map((name) =>
        engine.load(name, KITCHEN, { pool: { maxInstances: 2 } })
      ),
    );
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const payload = encodeU32(i);
        const capsule = capsules[i % 4];
        return capsule.invoke(i % 2 === 0 ? "echo" : "host", payload, ctx).then((reply) => ({
          i,
          reply,
        }));
      }),
    );
    assert.equal(results.length, 1000);
    for (const { i, reply } of results) {
      const body = i % 2 === 0 ? reply : decodeReply(reply).body;
      assert.equal(new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true), i);
    }
    for (const c of capsules) assert.ok(c.stats().instances <= 2);
  } finally {
    await engine.close();
  }
});

Deno.test("WasmEngine refuses a bad host function list or limit", () => {
  const make = (options: Partial<WasmEngineOptions<InvocationContext>>) => () =>
    new WasmEngine({ hostFunctions: [], idleCheckMs: 0, ...options });
  assert.throws(
    make({ hostFunctions: [{ name: "kv_get", inWorker: true }] }),
    isEngineError(
      EngineCode.WASM_INVALID_OPTION,
      /"kv_get" cannot be answered in the worker: only clock_ms, random_bytes, log can$/,
    ),
  );
  assert.throws(
    make({ hostFunctions: [{ name: "log" }, { name: "log" }] }),
    isEngineError(EngineCode.WASM_INVALID_OPTION, /^Host function "log" is listed twice$/),
  );
  assert.throws(
    make({ hostFunctions: [{ name: "Bad-Name" }] }),
    isEngineError(EngineCode.WASM_INVALID_OPTION, /^Host function name "Bad-Name" is malformed/),
  );
  assert.throws(
    make({ limits: { maxMemoryPages: 4096 } }),
    isEngineError(
      EngineCode.WASM_INVALID_OPTION,
      /^Engine limit "maxMemoryPages" is "4096": expected 1 to 1024$/,
    ),
  );
});
