/**
 * `CronSchedule`: a five-field cron expression (UTC) — `minute hour day-of-month month
 * day-of-week` with `*`, numbers, `a-b`, `*\/n`, `a-b/n`, `a/n`, lists, `jan`–`dec`, `sun`–`sat`
 * (0 and 7 are Sunday) — or a macro (`@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`,
 * `@yearly`, `@annually`). As in Vixie cron, when both day fields are restricted a day
 * matching either one fires.
 *
 * ```ts
 * import { CronSchedule } from "./cron_schedule.ts";
 *
 * const s = CronSchedule.parse("30 3 * * mon-fri");
 * const next = s.next(Date.UTC(2026, 0, 3, 12, 0)); // Saturday noon
 * if (new Date(next!).toISOString() !== "2026-01-05T03:30:00.000Z") throw new Error("next");
 * ```
 *
 * @module
 */
import { CapsuleCode, CapsuleError } from "./errors.ts";

const MINUTE_MS = 60_000;
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MACROS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  readonly base?: number;
}

const FIELDS: readonly FieldSpec[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS, base: 1 },
  { name: "day of week", min: 0, max: 7, names: DAYS, base: 0 },
];

/** The longest search for the next firing: 5 years (a schedule like Feb 30 never fires). */
const HORIZON_MS = 5 * 366 * 24 * 60 * MINUTE_MS;

/** A parsed cron schedule; see the module doc. */
export class CronSchedule {
  /** The expression as written. */
  readonly source: string;
  readonly #minutes: ReadonlySet<number>;
  readonly #hours: ReadonlySet<number>;
  readonly #days: ReadonlySet<number>;
  readonly #months: ReadonlySet<number>;
  readonly #weekdays: ReadonlySet<number>;
  readonly #anyDay: boolean;
  readonly #anyWeekday: boolean;

  private constructor(source: string, sets: Set<number>[], stars: boolean[]) {
    this.source = source;
    [this.#minutes, this.#hours, this.#days, this.#months, this.#weekdays] = sets;
    this.#anyDay = stars[2];
    this.#anyWeekday = stars[4];
  }

  /** Parses `expression`; throws `CRON_INVALID` naming the field at fault. */
  static parse(expression: string): CronSchedule {
    const text = expression.trim();
    const expanded = text.startsWith("@") ? MACROS[text] : text;
    if (expanded === undefined) {
      throw invalid(expression, `unknown macro "${text}"`);
    }
    const parts = expanded.split(/\s+/);
    if (parts.length !== 5) {
      throw invalid(expression, `${parts.length} fields, expected 5`);
    }
    const sets: Set<number>[] = [];
    const stars: boolean[] = [];
    for (let f = 0; f < 5; f++) {
      const spec = FIELDS[f];
      const set = new Set<number>();
      for (const item of parts[f].split(",")) addItem(expression, spec, item, set);
      if (f === 4 && set.has(7)) {
        set.delete(7);
        set.add(0);
      }
      sets.push(set);
      stars.push(parts[f].startsWith("*"));
    }
    return new CronSchedule(expression, sets, stars);
  }

  /** True when the minute holding `ms` (UTC) matches. */
  matches(ms: number): boolean {
    const d = new Date(ms);
    return this.#minutes.has(d.getUTCMinutes()) && this.#hours.has(d.getUTCHours()) &&
      this.#months.has(d.getUTCMonth() + 1) && this.#dayMatches(d);
  }

  /** The first whole minute strictly after `afterMs` that matches, or undefined when none in 5 years. */
  next(afterMs: number): number | undefined {
    let t = Math.floor(afterMs / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
    const end = afterMs + HORIZON_MS;
    while (t <= end) {
      const d = new Date(t);
      if (!this.#months.has(d.getUTCMonth() + 1)) {
        t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
        continue;
      }
      if (!this.#dayMatches(d)) {
        t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
        continue;
      }
      if (!this.#hours.has(d.getUTCHours())) {
        t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1);
        continue;
      }
      if (!this.#minutes.has(d.getUTCMinutes())) {
        t += MINUTE_MS;
        continue;
      }
      return t;
    }
    return undefined;
  }

  #dayMatches(d: Date): boolean {
    const dom = this.#days.has(d.getUTCDate());
    const dow = this.#weekdays.has(d.getUTCDay());
    if (this.#anyDay && this.#anyWeekday) return true;
    if (this.#anyDay) return dow;
    if (this.#anyWeekday) return dom;
    return dom || dow;
  }
}

function addItem(expression: string, spec: FieldSpec, item: string, set: Set<number>): void {
  const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d{1,2}))?$/.exec(item);
  const bad = (why: string) => invalid(expression, `${spec.name} "${item}" ${why}`);
  if (!m) throw bad("is malformed");
  const step = m[2] === undefined ? 1 : Number(m[2]);
  if (step < 1) throw bad("has a step below 1");
  let lo = spec.min;
  let hi = spec.max;
  if (m[1] !== "*") {
    const [a, b] = m[1].split("-").map((s) => value(spec, s));
    if (Number.isNaN(a) || (b !== undefined && Number.isNaN(b))) throw bad("is not a number");
    for (const n of b === undefined ? [a] : [a, b]) {
      if (n < spec.min || n > spec.max) throw bad(`is outside ${spec.min}-${spec.max}`);
    }
    if (b !== undefined && b < a) throw bad("is a descending range");
    lo = a;
    // "a/n" runs from a to the field's end, as in most crons; a bare "a" is just a.
    hi = b ?? (m[2] === undefined ? a : spec.max);
  }
  for (let n = lo; n <= hi; n += step) set.add(n);
}

function value(spec: FieldSpec, s: string): number {
  if (/^\d{1,2}$/.test(s)) return Number(s);
  const i = spec.names?.indexOf(s.toLowerCase()) ?? -1;
  return i >= 0 ? i + (spec.base ?? 0) : NaN;
}

function invalid(expression: string, reason: string): CapsuleError {
  return new CapsuleError(
    CapsuleCode.CRON_INVALID,
    `Invalid cron schedule "${expression}": ${reason}; use five fields "minute hour day-of-month month day-of-week" (UTC) or a macro such as @hourly`,
    { data: { field: expression, reason } },
  );
}
