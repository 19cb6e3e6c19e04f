import assert from "node:assert/strict";
import { ManualClock } from "../../../clock.ts";
import { EngineCode, EngineError } from "./errors.ts";
import {
  defaultMaxInstances,
  InstancePool,
  type InstancePoolOptions,
  type PoolInstance,
  runInCallPath,
} from "./instance_pool.ts";
import type { InstanceInvokeOptions, InvocationContext } from "./wasm_instance.ts";
import { ManualTimers as ManualEngineTimers } from "../../../events/mod.ts";

type Behaviour = (
  self: FakeInstance,
  payload: Uint8Array,
  options: InstanceInvokeOptions<InvocationContext>,
) => Promise<Uint8Array>;

/** An instance that runs `behaviour` instead of wasm. */
class FakeInstance implements PoolInstance<InvocationContext> {
  alive = true;
  invocations = 0;
  readonly #listeners: (() => void)[] = [];
  constructor(readonly id: number, readonly behaviour: Behaviour) {}
  invoke(_e: string, payload: Uint8Array, options: InstanceInvokeOptions<InvocationContext>) {
    this.invocations++;
    return this.behaviour(this, payload, options);
  }
  terminate(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const l of this.#listeners.splice(0)) l();
  }
  onExit(listener: () => void): void {
    if (this.alive) this.#listeners.push(listener);
    else listener();
  }
}

/** Invocations the test completes by hand. */
class Gate {
  readonly waiting: { id: number; release: () => void }[] = [];
  readonly behaviour: Behaviour = (self, payload) =>
    new Promise((resolve) => this.waiting.push({ id: self.id, release: () => resolve(payload) }));
  releaseOne(): void {
    this.waiting.shift()!.release();
  }
}

function setup(
  pool: Partial<InstancePoolOptions>,
  behaviour: Behaviour,
  fail?: () => EngineError | undefined,
) {
  const clock = new ManualClock(0);
  const timers = new ManualEngineTimers(clock);
  const instances: FakeInstance[] = [];
  const options: InstancePoolOptions = {
    minInstances: 1,
    maxInstances: 2,
    idleMs: 1_000,
    maxQueued: 100,
    queueTimeoutMs: 10_000,
    reentrantQueueTimeoutMs: 500,
    ...pool,
  };
  const p = new InstancePool<InvocationContext>("fake", () => {
    const err = fail?.();
    if (err !== undefined) return Promise.reject(err);
    const i = new FakeInstance(instances.length + 1, behaviour);
    instances.push(i);
    return Promise.resolve(i);
  }, { pool: options, clock, timers });
  return { pool: p, clock, timers, instances };
}

const ctx = { context: { principal: "default" }, timeoutMs: 1_000 };
const bytes = (n: number) => Uint8Array.of(n);
const tick = () => new Promise((r) => setTimeout(r, 0));

function isEngineError(code: string, re?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${err}`);
    assert.equal(err.code, code);
    if (re !== undefined) assert.match(err.message, re);
    return true;
  };
}

Deno.test("InstancePool.start() starts the warm minimum (at least one)", async () => {
  const { pool, instances } = setup({ minInstances: 3, maxInstances: 4 }, new Gate().behaviour);
  await pool.start();
  assert.equal(instances.length, 3);
  assert.deepEqual(pool.stats(), {
    instances: 3,
    busy: 0,
    idle: 3,
    starting: 0,
    queued: 0,
    spawned: 3,
  });

  const zero = setup({ minInstances: 0 }, new Gate().behaviour);
  await zero.pool.start();
  assert.equal(zero.instances.length, 1, "one instance proves the module instantiates");
});

Deno.test("InstancePool.invoke() grows lazily to the maximum, then queues in order", async () => {
  const gate = new Gate();
  const { pool, instances } = setup({ minInstances: 1, maxInstances: 2 }, gate.behaviour);
  await pool.start();
  const results = [1, 2, 3, 4].map((n) => pool.invoke("h", bytes(n), ctx));
  await tick();
  assert.equal(instances.length, 2, "a second instance was started for the second call");
  assert.equal(gate.waiting.length, 2);
  assert.equal(pool.stats().queued, 2);
  gate.releaseOne();
  gate.releaseOne();
  await tick();
  assert.equal(pool.stats().queued, 0);
  gate.releaseOne();
  gate.releaseOne();
  assert.deepEqual(await Promise.all(results), [bytes(1), bytes(2), bytes(3), bytes(4)]);
  assert.equal(instances.length, 2, "never more than the maximum");
  assert.equal(pool.stats().idle, 2);
});

Deno.test("InstancePool refuses beyond maxQueued and after queueTimeoutMs", async (t) => {
  const gate = new Gate();
  const { pool, timers } = setup(
    { minInstances: 1, maxInstances: 1, maxQueued: 1, queueTimeoutMs: 2_000 },
    gate.behaviour,
  );
  await pool.start();
  const running = pool.invoke("h", bytes(1), ctx);
  const queued = pool.invoke("h", bytes(2), ctx);

  await t.step("a full queue fails at once", async () => {
    await assert.rejects(
      pool.invoke("h", bytes(3), ctx),
      isEngineError(
        EngineCode.WASM_LIMIT_EXCEEDED,
        /^Capsule "fake" is busy: 1 invocations are queued, the limit is 1$/,
      ),
    );
  });

  await t.step("a queued invocation fails when its wait expires", async () => {
    timers.advance(2_000);
    await assert.rejects(
      queued,
      isEngineError(EngineCode.WASM_LIMIT_EXCEEDED, /all 1 instances stayed in use for 2000 ms$/),
    );
  });

  gate.releaseOne();
  assert.deepEqual(await running, bytes(1));
});

Deno.test("InstancePool: a reentrancy storm unwinds with LIMIT_EXCEEDED instead of deadlocking", async () => {
  const clock = new ManualClock(0);
  const timers = new ManualEngineTimers(clock);
  let depth = 0;
  let deepest = 0;
  let failures = 0;
  const instances: FakeInstance[] = [];
  // Each invocation makes a "host call" that invokes the same capsule again.
  const behaviour: Behaviour = async (_self, payload, options) => {
    depth++;
    deepest = Math.max(deepest, depth);
    try {
      const nested = await runInCallPath(
        options.scope,
        () => pool.invoke("h", bytes(payload[0] + 1), { ...ctx, timeoutMs: 1_000 }),
      ).catch((err) => {
        assert.ok(err instanceof EngineError && err.code === EngineCode.WASM_LIMIT_EXCEEDED);
        failures++;
        return Uint8Array.of(255);
      });
      return Uint8Array.of(payload[0], ...nested);
    } finally {
      depth--;
    }
  };
  const pool: InstancePool<InvocationContext> = new InstancePool("storm", () => {
    const i = new FakeInstance(instances.length + 1, behaviour);
    instances.push(i);
    return Promise.resolve(i);
  }, {
    pool: {
      minInstances: 1,
      maxInstances: 3,
      idleMs: 1_000,
      maxQueued: 100,
      queueTimeoutMs: 60_000,
      reentrantQueueTimeoutMs: 500,
    },
    clock,
    timers,
  });
  await pool.start();
  const storm = pool.invoke("h", bytes(0), ctx);
  await tick();
  assert.equal(pool.stats().queued, 1, "the fourth level waits for an instance");
  timers.advance(499);
  await tick();
  assert.equal(failures, 0);
  timers.advance(1);
  assert.deepEqual(
    await storm,
    Uint8Array.of(0, 1, 2, 255),
    "three levels ran, the fourth failed alone",
  );
  assert.equal(deepest, 3);
  assert.equal(failures, 1);
  assert.equal(instances.length, 3);
  assert.deepEqual(pool.stats().busy, 0);
});

Deno.test("InstancePool: a non-reentrant caller waits the full queueTimeoutMs", async () => {
  const gate = new Gate();
  const { pool, timers } = setup(
    { minInstances: 1, maxInstances: 1, queueTimeoutMs: 5_000 },
    gate.behaviour,
  );
  await pool.start();
  const first = pool.invoke("h", bytes(1), ctx);
  const second = pool.invoke("h", bytes(2), ctx);
  await tick();
  timers.advance(4_999);
  gate.releaseOne();
  assert.deepEqual(await first, bytes(1));
  await tick();
  gate.releaseOne();
  assert.deepEqual(await second, bytes(2));
});

Deno.test("InstancePool.trim() closes instances idle past idleMs beyond the minimum", async () => {
  const gate = new Gate();
  const { pool, clock, instances } = setup(
    { minInstances: 1, maxInstances: 3, idleMs: 1_000 },
    gate.behaviour,
  );
  await pool.start();
  const calls = [1, 2, 3].map((n) => pool.invoke("h", bytes(n), ctx));
  await tick();
  assert.equal(instances.length, 3);
  gate.releaseOne(); // instance 1 idle at t=0
  await calls[0];
  clock.advance(600);
  gate.releaseOne();
  gate.releaseOne(); // instances 2, 3 idle at t=600
  await Promise.all(calls);
  assert.equal(pool.trim(), 0, "nothing idle for 1000 ms yet");
  clock.advance(400); // instance 1 idle 1000 ms
  assert.equal(pool.trim(), 1);
  assert.deepEqual(instances.map((i) => i.alive), [false, true, true]);
  clock.advance(600);
  assert.equal(pool.trim(), 1, "the warm minimum stays");
  assert.equal(pool.stats().instances, 1);
});

Deno.test("InstancePool replaces an instance that dies and keeps the warm minimum", async () => {
  const { pool, instances } = setup({ minInstances: 1, maxInstances: 2 }, (self) => {
    self.terminate();
    return Promise.reject(new EngineError(EngineCode.WASM_TIMEOUT, "Timed out"));
  });
  await pool.start();
  await assert.rejects(pool.invoke("h", bytes(1), ctx), isEngineError(EngineCode.WASM_TIMEOUT));
  await tick();
  assert.equal(instances.length, 2, "a replacement was started");
  assert.deepEqual(pool.stats(), {
    instances: 1,
    busy: 0,
    idle: 1,
    starting: 0,
    queued: 0,
    spawned: 2,
  });
});

Deno.test("InstancePool: an abort while queued fails that invocation alone", async () => {
  const gate = new Gate();
  const { pool } = setup({ minInstances: 1, maxInstances: 1 }, gate.behaviour);
  await pool.start();
  const running = pool.invoke("h", bytes(1), ctx);
  const controller = new AbortController();
  const queued = pool.invoke("h", bytes(2), { ...ctx, signal: controller.signal });
  controller.abort(new Error("user pressed ^C"));
  await assert.rejects(
    queued,
    isEngineError(EngineCode.WASM_ABORTED, /aborted while queued: user pressed \^C$/),
  );
  gate.releaseOne();
  assert.deepEqual(await running, bytes(1));
  assert.equal(pool.stats().queued, 0);
});

Deno.test("InstancePool: a failing start rejects the waiter that needed it", async () => {
  let fail = false;
  const gate = new Gate();
  const { pool } = setup(
    { minInstances: 1, maxInstances: 2 },
    gate.behaviour,
    () =>
      fail ? new EngineError(EngineCode.WASM_LOAD, 'Cannot load capsule "fake": nope') : undefined,
  );
  await pool.start();
  const first = pool.invoke("h", bytes(1), ctx);
  fail = true;
  await assert.rejects(
    pool.invoke("h", bytes(2), ctx),
    isEngineError(EngineCode.WASM_LOAD, /nope/),
  );
  gate.releaseOne();
  assert.deepEqual(await first, bytes(1));
});

Deno.test("InstancePool.close() fails queued invocations and terminates every instance", async () => {
  const gate = new Gate();
  const { pool, instances } = setup({ minInstances: 1, maxInstances: 1 }, gate.behaviour);
  await pool.start();
  const running = pool.invoke("h", bytes(1), ctx);
  const queued = pool.invoke("h", bytes(2), ctx);
  pool.close();
  await assert.rejects(queued, isEngineError(EngineCode.WASM_CLOSED, /^Capsule "fake" is closed$/));
  assert.equal(instances[0].alive, false);
  await assert.rejects(pool.invoke("h", bytes(3), ctx), isEngineError(EngineCode.WASM_CLOSED));
  gate.releaseOne();
  await running;
});

Deno.test("InstancePool refuses inconsistent options", () => {
  assert.throws(
    () => setup({ minInstances: 3, maxInstances: 2 }, new Gate().behaviour),
    isEngineError(
      EngineCode.WASM_INVALID_OPTION,
      /"minInstances" is "3": it exceeds "maxInstances" \(2\)/,
    ),
  );
  assert.throws(
    () => setup({ maxInstances: 0 }, new Gate().behaviour),
    isEngineError(
      EngineCode.WASM_INVALID_OPTION,
      /"maxInstances" is "0": expected an integer of at least 1/,
    ),
  );
  assert.ok(defaultMaxInstances() >= 2);
});
