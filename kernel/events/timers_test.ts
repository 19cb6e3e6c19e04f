import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { ManualTimers } from "./mod.ts";

Deno.test("ManualTimers fires due callbacks in time order at their due time", () => {
  const clock = new ManualClock(0);
  const timers = new ManualTimers(clock);
  const fired: string[] = [];
  timers.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
  timers.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
  const c = timers.setTimeout(() => fired.push("c"), 15);
  timers.setTimeout(() => timers.setTimeout(() => fired.push(`d@${clock.now()}`), 5), 12);
  timers.clearTimeout(c);
  timers.advance(9);
  assert.deepEqual(fired, []);
  timers.advance(21);
  assert.deepEqual(fired, ["a@10", "d@17", "b@20"]);
  assert.equal(clock.now(), 30);
  assert.equal(timers.pending, 0);
});
