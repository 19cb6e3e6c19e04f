/**
 * Where the bus reports what must never be silent: evictions, interceptor failures, storms.
 *
 * @module
 */

/** A sink for the bus's warnings and errors; `data` is structured and never holds payloads. */
export interface BusLogger {
  /** Something an operator should look at (a storm). */
  warn(message: string, data?: Record<string, unknown>): void;
  /** Something was lost or failed (an eviction, a failed interceptor). */
  error(message: string, data?: Record<string, unknown>): void;
}

/** Writes one line per entry to stderr: `astrid.bus WARN <message> <json data>`. */
export const stderrLogger: BusLogger = {
  warn: (message, data) => write("WARN", message, data),
  error: (message, data) => write("ERROR", message, data),
};

const encoder = new TextEncoder();

function write(level: string, message: string, data?: Record<string, unknown>): void {
  let line = `astrid.bus ${level} ${message}`;
  if (data !== undefined) {
    try {
      line += ` ${JSON.stringify(data)}`;
    } catch {
      line += " (unserialisable data)";
    }
  }
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing better to do.
  }
}
