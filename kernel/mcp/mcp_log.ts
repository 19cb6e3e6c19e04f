/**
 * Where the engine's and the servers' log lines go: by default one JSON-lines file per server
 * (`<dir>/<server>.log`, 0600) — a capsule server's lines are its capsule's log. Writes are
 * queued and appended in order; a failing write is dropped, never thrown.
 *
 * @module
 */
import { join } from "node:path";
import type { Clock } from "../clock.ts";
import type { McpLogEntry, McpLogSink } from "./server_instance.ts";

/** A sink appending each entry as one JSON line to `<dir>/<server>.log`. */
export function fileLogSink(dir: string, clock: Clock): McpLogSink {
  let queue: Promise<void> = Deno.mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => {});
  const encoder = new TextEncoder();
  return (entry: McpLogEntry) => {
    const line = JSON.stringify({
      ts: new Date(clock.now()).toISOString(),
      level: entry.level,
      server: entry.server,
      message: entry.message,
      ...(entry.fields ?? {}),
    }) + "\n";
    queue = queue.then(() =>
      Deno.writeFile(join(dir, `${entry.server}.log`), encoder.encode(line), {
        append: true,
        create: true,
        mode: 0o600,
      })
    ).catch(() => {});
  };
}

/** A sink that drops everything. */
export const discardLogSink: McpLogSink = () => {};
