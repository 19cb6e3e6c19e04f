import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { SlidingWindowLimiter } from "./sliding_window_limiter.ts";

Deno.test("SlidingWindowLimiter.take() allows limit per sliding window", async (t) => {
  const clock = new ManualClock(0);
  const limiter = new SlidingWindowLimiter(clock, { limit: 5, windowMs: 60_000 });

  await t.step("five pass, the sixth waits for the oldest to leave", () => {
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(limiter.take(), { allowed: true });
      clock.advance(10_000);
    }
    // now = 50 s; the first was at 0 s and leaves the window at 60 s.
    assert.deepEqual(limiter.take(), { allowed: false, retryAfterMs: 10_000 });
  });

  await t.step("refusals are not counted", () => {
    clock.advance(9_999);
    assert.equal(limiter.take().allowed, false);
    clock.advance(1);
    assert.deepEqual(limiter.take(), { allowed: true });
    assert.equal(limiter.take().allowed, false);
  });

  await t.step("bad options are refused", () => {
    assert.throws(
      () => new SlidingWindowLimiter(clock, { limit: 0, windowMs: 1 }),
      /Invalid limit "0"/,
    );
    assert.throws(
      () => new SlidingWindowLimiter(clock, { limit: 1, windowMs: 0 }),
      /Invalid windowMs/,
    );
  });
});
