/**
 * Logging: `astrid.log(level, message)`. Lines are buffered in the capsule's worker and reach
 * the capsule's log (ERROR lines also the daemon's) with the invocation's context; a line
 * longer than 8 KiB is cut. Logging never fails.
 */
import { writeLog } from "./internal/env";

/** Writes `message` at `level`: `"trace"`, `"debug"`, `"info"`, `"warn"` or `"error"`. */
export function write(level: string, message: string): void {
  writeLog(level, message);
}

/** Writes a `trace` line. */
export function trace(message: string): void {
  writeLog("trace", message);
}

/** Writes a `debug` line. */
export function debug(message: string): void {
  writeLog("debug", message);
}

/** Writes an `info` line. */
export function info(message: string): void {
  writeLog("info", message);
}

/** Writes a `warn` line. */
export function warn(message: string): void {
  writeLog("warn", message);
}

/** Writes an `error` line. */
export function error(message: string): void {
  writeLog("error", message);
}
