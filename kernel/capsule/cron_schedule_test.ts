import assert from "node:assert/strict";
import { CronSchedule } from "./cron_schedule.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => ms === undefined ? undefined : new Date(ms).toISOString();

Deno.test("CronSchedule.next() finds the first matching minute after a time (UTC)", async (t) => {
  await t.step("steps, ranges and lists", () => {
    assert.equal(
      iso(CronSchedule.parse("*/15 * * * *").next(at("2026-01-05T09:07:30Z"))),
      "2026-01-05T09:15:00.000Z",
    );
    assert.equal(
      iso(CronSchedule.parse("0 9-17/4 * * *").next(at("2026-01-05T09:00:00Z"))),
      "2026-01-05T13:00:00.000Z",
    );
    assert.equal(
      iso(CronSchedule.parse("5,35 * * * *").next(at("2026-01-05T09:05:00Z"))),
      "2026-01-05T09:35:00.000Z",
    );
  });
  await t.step("strictly after: a matching minute itself is skipped", () => {
    assert.equal(
      iso(CronSchedule.parse("0 3 * * *").next(at("2026-01-05T03:00:00Z"))),
      "2026-01-06T03:00:00.000Z",
    );
  });
  await t.step("names, and 7 is Sunday", () => {
    assert.equal(
      iso(CronSchedule.parse("30 3 * * mon-fri").next(at("2026-01-03T12:00:00Z"))),
      "2026-01-05T03:30:00.000Z",
    );
    assert.equal(
      iso(CronSchedule.parse("0 0 * * 7").next(at("2026-01-05T00:00:00Z"))),
      "2026-01-11T00:00:00.000Z",
    );
    assert.equal(
      iso(CronSchedule.parse("0 0 1 jun *").next(at("2026-01-05T00:00:00Z"))),
      "2026-06-01T00:00:00.000Z",
    );
  });
  await t.step("both day fields restricted: either matches (Vixie cron)", () => {
    // The 13th, or any Friday: Friday 2026-01-09 comes first.
    assert.equal(
      iso(CronSchedule.parse("0 0 13 * fri").next(at("2026-01-05T00:00:00Z"))),
      "2026-01-09T00:00:00.000Z",
    );
  });
  await t.step("macros", () => {
    assert.equal(
      iso(CronSchedule.parse("@hourly").next(at("2026-01-05T09:07:00Z"))),
      "2026-01-05T10:00:00.000Z",
    );
    assert.equal(
      iso(CronSchedule.parse("@monthly").next(at("2026-01-05T09:07:00Z"))),
      "2026-02-01T00:00:00.000Z",
    );
    assert.equal(
      iso(CronSchedule.parse("@yearly").next(at("2026-01-05T09:07:00Z"))),
      "2027-01-01T00:00:00.000Z",
    );
  });
  await t.step("a leap day is found; a day that never comes gives undefined", () => {
    assert.equal(
      iso(CronSchedule.parse("0 0 29 2 *").next(at("2026-01-05T00:00:00Z"))),
      "2028-02-29T00:00:00.000Z",
    );
    assert.equal(CronSchedule.parse("0 0 30 2 *").next(at("2026-01-05T00:00:00Z")), undefined);
  });
  await t.step("a/n runs from a to the end of the field", () => {
    const s = CronSchedule.parse("50/5 * * * *");
    assert.equal(iso(s.next(at("2026-01-05T09:51:00Z"))), "2026-01-05T09:55:00.000Z");
    assert.equal(iso(s.next(at("2026-01-05T09:55:00Z"))), "2026-01-05T10:50:00.000Z");
  });
});

Deno.test("CronSchedule.matches() tests one minute", () => {
  const s = CronSchedule.parse("0 12 * * *");
  assert.equal(s.matches(at("2026-01-05T12:00:59Z")), true);
  assert.equal(s.matches(at("2026-01-05T12:01:00Z")), false);
});

Deno.test("CronSchedule.parse() names the bad field", () => {
  for (
    const [expr, re] of [
      ["* * * *", /4 fields, expected 5/],
      ["61 * * * *", /minute "61" is outside 0-59/],
      ["* * * * funday", /day of week "funday" is not a number/],
      ["5-1 * * * *", /minute "5-1" is a descending range/],
      ["*/0 * * * *", /minute "\*\/0" has a step below 1/],
      ["@sometimes", /unknown macro "@sometimes"/],
    ] as const
  ) {
    assert.throws(() => CronSchedule.parse(expr), (err: unknown) => {
      assert.ok(err instanceof CapsuleError);
      assert.equal(err.code, CapsuleCode.CRON_INVALID);
      assert.match(err.message, re);
      return true;
    });
  }
});
