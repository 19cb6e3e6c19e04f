import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { ManualTimers } from "../events/mod.ts";
import { IdleMonitor, type IdleMonitorOptions } from "./idle_monitor.ts";

function setup(options: Partial<IdleMonitorOptions>) {
  const timers = new ManualTimers(new ManualClock(0));
  const fired: string[] = [];
  const monitor = new IdleMonitor({
    timers,
    idleTimeoutMs: 300_000,
    ephemeral: false,
    onIdle: (reason) => fired.push(reason),
    ...options,
  });
  monitor.start();
  return { timers, fired, monitor };
}

Deno.test("IdleMonitor stops a persistent daemon after the idle timeout", async (t) => {
  await t.step("no client from boot: fires after the timeout", () => {
    const { timers, fired } = setup({ idleTimeoutMs: 1_000 });
    timers.advance(999);
    assert.deepEqual(fired, []);
    timers.advance(1);
    assert.deepEqual(fired, ["idle: no client for 1 s"]);
    timers.advance(10_000);
    assert.equal(fired.length, 1);
  });

  await t.step("a connection resets the clock; leaving starts it again", () => {
    const { timers, fired, monitor } = setup({ idleTimeoutMs: 1_000 });
    timers.advance(900);
    monitor.connections(1);
    timers.advance(5_000);
    assert.deepEqual(fired, []);
    monitor.connections(2);
    monitor.connections(0);
    timers.advance(999);
    assert.deepEqual(fired, []);
    timers.advance(1);
    assert.equal(fired.length, 1);
  });

  await t.step("0 never stops", () => {
    const { timers, fired } = setup({ idleTimeoutMs: 0 });
    timers.advance(10 * 86_400_000);
    assert.deepEqual(fired, []);
    assert.equal(timers.pending, 0);
  });

  await t.step("a daemon or cron capsule keeps it up; it looks again a period later", () => {
    let busy = true;
    const { timers, fired } = setup({ idleTimeoutMs: 1_000, keepAlive: () => busy });
    timers.advance(3_000);
    assert.deepEqual(fired, []);
    busy = false;
    timers.advance(1_000);
    assert.equal(fired.length, 1);
  });

  await t.step("stop() cancels", () => {
    const { timers, fired, monitor } = setup({ idleTimeoutMs: 1_000 });
    monitor.stop();
    timers.advance(5_000);
    assert.deepEqual(fired, []);
    assert.equal(timers.pending, 0);
  });
});

Deno.test("IdleMonitor stops an ephemeral daemon when its last client leaves", async (t) => {
  await t.step("after the grace, once a client came and went", () => {
    const { timers, fired, monitor } = setup({ ephemeral: true, graceMs: 2_000 });
    monitor.connections(1);
    monitor.connections(0);
    timers.advance(1_999);
    monitor.connections(1); // a second client within the grace keeps it
    timers.advance(10_000);
    assert.deepEqual(fired, []);
    monitor.connections(0);
    timers.advance(2_000);
    assert.deepEqual(fired, ["ephemeral: the last client left"]);
  });

  await t.step("no client ever: the start grace (or a shorter idle timeout)", () => {
    const a = setup({ ephemeral: true, startGraceMs: 30_000 });
    a.timers.advance(30_000);
    assert.equal(a.fired.length, 1);
    const b = setup({ ephemeral: true, startGraceMs: 30_000, idleTimeoutMs: 1_000 });
    b.timers.advance(1_000);
    assert.equal(b.fired.length, 1);
  });

  await t.step("setEphemeral(false) (astrid start) turns the grace into the idle timeout", () => {
    const { timers, fired, monitor } = setup({
      ephemeral: true,
      graceMs: 2_000,
      idleTimeoutMs: 60_000,
    });
    monitor.connections(1);
    monitor.connections(0);
    monitor.setEphemeral(false);
    assert.equal(monitor.ephemeral, false);
    timers.advance(59_999);
    assert.deepEqual(fired, []);
    timers.advance(1);
    assert.equal(fired.length, 1);
  });
});
