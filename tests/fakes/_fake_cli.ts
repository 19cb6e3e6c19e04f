/**
 * The command line of a standalone fake (`deno run -A tests/fakes/openai_fake.ts ...`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { FakeCode, FakeError } from "./errors.ts";
import type { FakeServer, FakeServerOptions } from "./fake_server.ts";

/**
 * Runs a fake as a process: `--script NAME|PATH` (default `demo`), `--port N` (default 0),
 * `--api-key KEY`, `--set NAME=VALUE` (repeatable, replaces a script constant). Prints
 * `listening on http://127.0.0.1:PORT` on stdout and serves until SIGINT or SIGTERM.
 */
export async function runFakeCli(
  start: (options: FakeServerOptions) => Promise<FakeServer>,
  args: readonly string[],
): Promise<void> {
  let server: FakeServer;
  try {
    const { values } = parseArgs({
      args: [...args],
      options: {
        script: { type: "string", default: "demo" },
        port: { type: "string", default: "0" },
        "api-key": { type: "string" },
        set: { type: "string", multiple: true, default: [] },
      },
      strict: true,
      allowPositionals: false,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new FakeError(
        FakeCode.FAKE_ARGUMENT_INVALID,
        `Invalid --port "${values.port}": give a port from 0 to 65535 (0 picks a free one)`,
        { data: { field: "port", value: String(values.port) } },
      );
    }
    const constants: Record<string, string> = {};
    for (const pair of values.set ?? []) {
      const eq = pair.indexOf("=");
      if (eq <= 0) {
        throw new FakeError(
          FakeCode.FAKE_ARGUMENT_INVALID,
          `Invalid --set "${pair}": write NAME=VALUE, e.g. --set READ_TOOL=fs_read`,
          { data: { field: "set", value: pair } },
        );
      }
      constants[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    server = await start({
      script: values.script!,
      port,
      apiKey: values["api-key"],
      constants,
    });
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(2);
  }
  console.log(`listening on ${server.url}`);
  console.error(
    `${server.provider} fake: script "${server.script.name}" (${server.script.turns.length} turns), base URL ${server.baseUrl}`,
  );
  const stop = () => {
    server.close().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
