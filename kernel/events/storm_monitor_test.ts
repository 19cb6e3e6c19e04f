import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { BusCode, BusError, StormMonitor } from "./mod.ts";
import { MemoryLogger } from "./_test_helpers.ts";

function setup(attached = false) {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  let client = attached;
  const monitor = new StormMonitor({
    clock,
    logger,
    clientAttached: () => client,
    thresholdPerSecond: 100,
    windowMs: 5_000,
    topTopics: 2,
    maxTrackedTopics: 3,
  });
  return { clock, logger, monitor, attach: (v: boolean) => client = v };
}

function burst(monitor: StormMonitor, topic: string, n: number): void {
  for (let i = 0; i < n; i++) monitor.record(topic);
}

Deno.test("StormMonitor warns naming the hottest topics when no client is attached", () => {
  const { clock, logger, monitor } = setup();
  burst(monitor, "a.loop", 400);
  burst(monitor, "b.loop", 200);
  burst(monitor, "c.quiet", 5);
  clock.advance(5_000);
  const report = monitor.check();
  assert.ok(report);
  assert.equal(report.total, 605);
  assert.equal(report.rate, 121);
  assert.deepEqual(report.topics, [{ topic: "a.loop", count: 400 }, {
    topic: "b.loop",
    count: 200,
  }]);
  const warn = logger.of("warn");
  assert.equal(warn.length, 1);
  assert.match(
    warn[0].message,
    /^Event storm: 121 messages\/s over 5000 ms with no client attached, the threshold is 100; hottest topics: a\.loop \(400\), b\.loop \(200\)$/,
  );
  assert.equal(monitor.storms, 1);
});

Deno.test("StormMonitor stays quiet below the threshold, inside a window or with a client", () => {
  const { clock, logger, monitor, attach } = setup();
  burst(monitor, "a", 500);
  clock.advance(4_999);
  assert.equal(monitor.check(), undefined, "the window has not elapsed");
  clock.advance(1);
  assert.equal(monitor.check(), undefined, "exactly 100/s is not above the threshold");
  attach(true);
  burst(monitor, "a", 10_000);
  clock.advance(5_000);
  assert.equal(monitor.check(), undefined, "a client is attached");
  attach(false);
  burst(monitor, "a", 5_000);
  clock.advance(60_000);
  assert.equal(monitor.check(), undefined, "5,000 over 60 s is a burst, not a sustained rate");
  assert.equal(logger.entries.length, 0);
});

Deno.test("StormMonitor.record() closes an elapsed window itself and bounds its topic map", () => {
  const { clock, logger, monitor } = setup();
  for (const t of ["t1", "t2", "t3", "t4", "t5"]) burst(monitor, t, 200);
  clock.advance(5_000);
  monitor.record("next");
  assert.equal(monitor.storms, 1);
  assert.match(logger.of("warn")[0].message, /\(other\) \(400\)/);
});

Deno.test("StormMonitor refuses nonsensical options", () => {
  assert.throws(
    () => new StormMonitor({ clock: new ManualClock(), clientAttached: () => false, windowMs: 0 }),
    (err: unknown) => err instanceof BusError && err.code === BusCode.BUS_INVALID_OPTION,
  );
});
