/**
 * Test helper: runs a fake as its own process, as the demo does, and returns the URL it prints.
 *
 * @module
 */

/** A fake running as a child process. */
export interface StandaloneFake {
  /** The URL printed on stdout. */
  url: string;
  /** Stops the process with SIGTERM and returns its exit code. */
  stop(): Promise<number>;
}

/** Spawns `deno run -A <module> ...args` and waits for `listening on URL`. */
export async function spawnFake(module: string, args: string[]): Promise<StandaloneFake> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", new URL(module, import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) break;
    out += value;
  }
  const line = out.split("\n")[0];
  const url = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line)?.[1];
  if (url === undefined) {
    await reader.cancel();
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`The fake printed ${JSON.stringify(line)}, not "listening on URL"`);
  }
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      const status = await child.status;
      await reader.cancel();
      return status.code;
    },
  };
}

/** Runs a fake process that is expected to fail and returns its exit code and stderr. */
export async function runFakeExpectingFailure(
  module: string,
  args: string[],
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", new URL(module, import.meta.url).pathname, ...args],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}
