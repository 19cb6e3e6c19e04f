import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { ManualTimers } from "../events/mod.ts";
import { CronRunner } from "./cron_runner.ts";
import { CronSchedule } from "./cron_schedule.ts";

Deno.test("CronRunner fires each job at its due minutes, from the injected clock", async (t) => {
  const clock = new ManualClock(Date.parse("2026-01-05T09:00:30Z"));
  const timers = new ManualTimers(clock);
  const fired: string[] = [];
  const errors: string[] = [];
  const runner = new CronRunner(clock, timers, { onError: (name) => errors.push(name) });
  runner.add("quarter", CronSchedule.parse("*/15 * * * *"), (at) => {
    fired.push(`quarter@${new Date(at).toISOString().slice(11, 16)}`);
  });
  runner.add("bad", CronSchedule.parse("@hourly"), () => {
    throw new Error("boom");
  });

  await t.step("due times are whole minutes", () => {
    assert.deepEqual(runner.jobs().map((j) => new Date(j.next!).toISOString()), [
      "2026-01-05T09:15:00.000Z",
      "2026-01-05T10:00:00.000Z",
    ]);
  });
  await t.step("advancing fires in order; a throwing job keeps its schedule", () => {
    timers.advance(2 * 60 * 60_000);
    assert.deepEqual(fired, [
      "quarter@09:15",
      "quarter@09:30",
      "quarter@09:45",
      "quarter@10:00",
      "quarter@10:15",
      "quarter@10:30",
      "quarter@10:45",
      "quarter@11:00",
    ]);
    assert.deepEqual(errors, ["bad", "bad"]);
  });
  await t.step("stop() cancels every timer", () => {
    runner.stop();
    assert.equal(timers.pending, 0);
    timers.advance(60 * 60_000);
    assert.equal(fired.length, 8);
  });
});
