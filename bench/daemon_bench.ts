/**
 * Daemon figures, each beside `deno run` of an empty script measured in the same run:
 *
 * 1. `astrid status` round trip against a warm persistent daemon, including the CLI process
 *    start (spawn → output → exit). Goal: p50 < 30 ms.
 * 2. Daemon cold boot: spawn `astrid daemon` in a fresh home → `run/system.ready` exists, and
 *    → a client's first `status` is answered, with 0 capsules and with 10 installed ones (ten
 *    distinct tiny WAT tool capsules, installed the way `capsule install` does:
 *    `BinaryStore.put` + `writeInstallRecord`). Goal: < 500 ms with 10 capsules.
 *
 * Two ways to run it:
 * - `deno bench -A bench/daemon_bench.ts`: means and ratios against the baseline (groups).
 * - `deno run -A bench/daemon_bench.ts`: p50/p90/p99 of each, baseline first (deno bench
 *   prints no p50).
 */
import { join } from "node:path";
import wabtInit from "wabt";
import { BinaryStore, userCapsulesDir, writeInstallRecord } from "../kernel/capsule/mod.ts";
import { DaemonClient } from "../kernel/daemon/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";

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

/** How many capsules the "10 capsules" cold boot installs. */
const CAPSULES = 10;

const wabt = await wabtInit();

/** A minimal tool guest: `memory`, a bump `astrid_alloc`, and `tool_ping` replying OK + `i`. */
function toolGuest(i: number): Uint8Array {
  const body = new TextEncoder().encode(String(i));
  const reply = `\\00\\00\\00\\00${body.reduce((a, b) => a + `\\${b.toString(16)}`, "")}`;
  const m = wabt.parseWat(
    `guest${i}.wat`,
    `(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "astrid_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $len)))
    (local.get $p))
  (data (i32.const 16) "${reply}")
  (func (export "tool_ping") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const ${4 + body.length}))))`,
  );
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}
const guests = Array.from({ length: CAPSULES }, (_, i) => toolGuest(i));

/** Installs `n` distinct tool capsules (`bench-0` … ) for the default principal of `root`. */
async function installCapsules(root: string, n: number): Promise<void> {
  const home = await AstridHome.open(root);
  const binaries = new BinaryStore(home.bin);
  const base = userCapsulesDir(home, principalId("default"));
  for (let i = 0; i < n; i++) {
    const name = `bench-${i}`;
    const hash = await binaries.put(guests[i]);
    await writeInstallRecord(join(base, name), {
      manifestText: `[package]\nname = "${name}"\nversion = "0.1.0"\n\n[wasm]\n\n[[tool]]\n` +
        `name = "ping_${i}"\ndescription = "Replies ${i}"\nhandler = "tool_ping"\n`,
      meta: {
        name,
        version: "0.1.0",
        wasm_hash: hash,
        source: "bench",
        installed_at: new Date().toISOString(),
      },
    });
  }
}

let bootSeq = 0;

/**
 * Spawns a daemon in a fresh home holding `capsules` installed capsules (installed before the
 * clock starts, and before `b.start()` under deno bench); resolves at `until` with the ms it
 * took, then tears down. At `status`, checks that every installed capsule is listed as loaded.
 */
async function coldBoot(
  until: "ready" | "status",
  capsules = 0,
  b?: Deno.BenchContext,
): Promise<number> {
  const home = `${root}/c${++bootSeq}`;
  if (capsules > 0) await installCapsules(home, capsules);
  b?.start();
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
    const status = await client.call<{ capsules: { name: string; state: string }[] }>("status");
    ms = performance.now() - t0;
    await client.close();
    const loaded = status.capsules.filter((c) => c.state === "loaded").length;
    if (loaded !== capsules) {
      throw new Error(
        `Cold boot with ${capsules} capsules: status lists ${loaded} loaded: ${
          JSON.stringify(status.capsules)
        }`,
      );
    }
  }
  b?.end();
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
      `  ${name.padEnd(58)} p50 ${f(p50)} ms  p90 ${f(p90)} ms  p99 ${f(p99)} ms${ratio}`,
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
    const coldBase: number[] = [];
    const boots: number[] = [];
    const firstStatus: number[] = [];
    const boots10: number[] = [];
    const firstStatus10: number[] = [];
    const coldN = Math.max(5, Math.floor(N / 2));
    for (let i = 0; i < coldN; i++) {
      coldBase.push(await time(emptyScript));
      boots.push(await coldBoot("ready"));
      firstStatus.push(await coldBoot("status"));
      boots10.push(await coldBoot("ready", CAPSULES));
      firstStatus10.push(await coldBoot("status", CAPSULES));
    }
    console.log(`Daemon figures, ${N} runs (${coldN} cold boots), interleaved with the baseline:`);
    const b = line("baseline: deno run of an empty script", base);
    line("astrid status, warm daemon (goal p50 < 30 ms)", status, b);
    const cb = line("baseline, interleaved with the cold boots", coldBase);
    const r0 = line("cold boot, 0 capsules → run/system.ready", boots, cb);
    line("cold boot, 0 capsules → first status answered", firstStatus, cb);
    const r10 = line(
      `cold boot, ${CAPSULES} capsules → run/system.ready (goal < 500 ms)`,
      boots10,
      cb,
    );
    line(`cold boot, ${CAPSULES} capsules → first status (all loaded)`, firstStatus10, cb);
    console.log(`  (${CAPSULES} capsules vs 0, ready p50: ${(r10 / r0).toFixed(2)}x)`);
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

  const cold = `cold boot (goal < 500 ms with ${CAPSULES} capsules)`;
  Deno.bench(
    "deno run of an empty script",
    { group: cold, baseline: true, n: 20, warmup: 2 },
    emptyScript,
  );
  Deno.bench(
    "astrid daemon: spawn → run/system.ready",
    { group: cold, n: 20, warmup: 2 },
    async (b) => {
      await coldBoot("ready", 0, b);
    },
  );
  Deno.bench(
    `astrid daemon, ${CAPSULES} capsules: spawn → run/system.ready`,
    { group: cold, n: 20, warmup: 2 },
    async (b) => {
      await coldBoot("ready", CAPSULES, b);
    },
  );
}
