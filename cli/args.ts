/**
 * Argument parsing shared by the verbs: `node:util` `parseArgs` with errors turned into
 * {@link UsageError}s that name the verb.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.ts";

/** Parses `args` for `verb` with `options`; unknown flags are usage errors. */
export function parseVerbArgs<T extends ParseArgsConfig["options"]>(
  verb: string,
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(verb, (err as Error).message.replace(/\.$/, ""));
  }
}

/**
 * Parses a `--since` value: an ISO 8601 date/time, or a duration back from `now` such as
 * `30s`, `15m`, `2h`, `7d`. Returns milliseconds since the epoch.
 */
export function parseSince(verb: string, value: string, now: number): number {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value);
  if (rel !== null) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "s"];
    return now - Number(rel[1]) * unit;
  }
  const at = Date.parse(value);
  if (Number.isNaN(at)) {
    throw new UsageError(
      verb,
      `Invalid --since "${value}": use an ISO date such as 2026-11-23T10:00:00Z or a duration such as 15m, 2h, 7d`,
    );
  }
  return at;
}

/** Parses a positive integer flag value, naming the flag on error. */
export function parsePositiveInt(verb: string, flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(verb, `Invalid ${flag} "${value}": expected a positive whole number`);
  }
  return n;
}
