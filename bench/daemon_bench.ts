/**
 * Daemon figures, each beside `deno run` of an empty script measured in the same run:
 *
 * 1. `astrid status` round trip against a warm persistent daemon, including the CLI process
 *    start (spawn → output → exit). Goal: p50 < 30 ms.
 * 2. Daemon cold boot: spawn `astrid daemon` in a fresh home → `run/system.ready` exists, and
 *    → a client's first `status` is answered. Goal: < 500 ms. With 0 capsules: the "10
 *    capsules" part of the goal waits for the capsule runtime (`DaemonOptions.capsules`).
 *
 * Two ways to run it:
 * - `deno bench -A bench/daemon_bench.ts`: means and ratios against the baseline (groups).
 * - `deno run -A bench/daemon_bench.ts`: p50/p90/p99 of each, baseline first (deno bench
 *   prints no p50).
 */
import { DaemonClient } from "../kernel/daemon/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const DENO = Deno.execPath();
const FLAGS = ["run", "-A", "--quiet", "--config", CONFIG];

const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "ab" });
const empty = `${root}/empty.ts`;
await Deno.writeTextFile(empty, "");
const warmHome = `${root}/w`;

async function exec(args: string[], env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command(DENO, {
    args,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `${args.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

// Declared `async`: deno bench awaits only functions that are async by declaration.
const emptyScript = async () => await exec([...FLAGS, empty]);
const astridStatus = async () => await exec([...FLAGS, MAIN, "status"], { ASTRID_HOME: warmHome });

let bootSeq = 0;

/** Spawns a daemon in a fresh home; resolves at `until` with the ms it took, then tears down. */
async function coldBoot(until: "ready" | "status"): Promise<number> {
  const home = `${root}/c${++bootSeq}`;
  const t0 = performance.now();
  const child = new Deno.Command(DENO, {
    args: [...FLAGS, MAIN, "daemon"],
    env: { ASTRID_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const ready = `${home}/run/system.ready`;
  for (;;) {
    try {
      await Deno.lstat(ready);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  let ms = performance.now() - t0;
  if (until === "status") {
    const token = (await Deno.readTextFile(`${home}/run/system.token`)).trim();
    const client = await DaemonClient.connect(`${home}/run/system.sock`, {
      token,
      client: "bench",
    });
    await client.call("status");
    ms = performance.now() - t0;
    await client.close();
  }
  child.kill("SIGTERM");
  await child.status;
  await Deno.remove(home, { recursive: true });
  return ms;
}

async function teardown(): Promise<void> {
  await exec([...FLAGS, MAIN, "stop"], { ASTRID_HOME: warmHome }).catch(() => {});
  await Deno.remove(root, { recursive: true }).catch(() => {});
}

await exec([...FLAGS, MAIN, "start"], { ASTRID_HOME: warmHome });

if (import.meta.main) {
  const N = Number(Deno.env.get("BENCH_N") ?? 40);
  const time = async (fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0;
  };
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const q = (p: number) => s[Math.min(s.length - 1, Math.floor(s.length * p))];
    return { p50: q(0.5), p90: q(0.9), p99: q(0.99) };
  };
  const line = (name: string, xs: number[], base?: number) => {
    const { p50, p90, p99 } = stats(xs);
    const f = (v: number) => v.toFixed(1).padStart(7);
    const ratio = base === undefined ? "" : `   ${(p50 / base).toFixed(2)}x baseline p50`;
    console.log(
      `  ${name.padEnd(48)} p50 ${f(p50)} ms  p90 ${f(p90)} ms  p99 ${f(p99)} ms${ratio}`,
    );
    return p50;
  };
  try {
    for (let i = 0; i < 3; i++) await Promise.all([emptyScript(), astridStatus()]);
    const base: number[] = [];
    const status: number[] = [];
    for (let i = 0; i < N; i++) {
      base.push(await time(emptyScript));
      status.push(await time(astridStatus));
    }
    const boots: number[] = [];
    const firstStatus: number[] = [];
    const coldN = Math.max(5, Math.floor(N / 2));
    for (let i = 0; i < coldN; i++) {
      boots.push(await coldBoot("ready"));
      firstStatus.push(await coldBoot("status"));
    }
    console.log(`Daemon figures, ${N} runs (${coldN} cold boots), interleaved with the baseline:`);
    const b = line("baseline: deno run of an empty script", base);
    line("astrid status, warm daemon (goal p50 < 30 ms)", status, b);
    line("cold boot → run/system.ready (goal < 500 ms)", boots, b);
    line("cold boot → first status answered", firstStatus, b);
    console.log("  (0 capsules: the 10-capsule cold boot waits for the capsule runtime)");
  } finally {
    await teardown();
  }
} else {
  globalThis.addEventListener("unload", () => {
    // Synchronous teardown: stop the warm daemon's process and drop the temp homes.
    try {
      const pid = Number.parseInt(Deno.readTextFileSync(`${warmHome}/run/system.lock`), 10);
      if (pid > 0) Deno.kill(pid, "SIGTERM");
    } catch {
      // Already gone.
    }
    try {
      Deno.removeSync(root, { recursive: true });
    } catch {
      // Already removed.
    }
  });

  const roundTrip = "status round trip incl. CLI start (goal p50 < 30 ms)";
  Deno.bench(
    "deno run of an empty script",
    { group: roundTrip, baseline: true, n: 40, warmup: 3 },
    emptyScript,
  );
  Deno.bench("astrid status (warm daemon)", { group: roundTrip, n: 40, warmup: 3 }, astridStatus);

  const cold = "cold boot (goal < 500 ms; 0 capsules, 10 wait for the capsule runtime)";
  Deno.bench(
    "deno run of an empty script",
    { group: cold, baseline: true, n: 20, warmup: 2 },
    emptyScript,
  );
  Deno.bench(
    "astrid daemon: spawn → run/system.ready",
    { group: cold, n: 20, warmup: 2 },
    async (b) => {
      b.start();
      await coldBoot("ready");
      b.end();
    },
  );
}
