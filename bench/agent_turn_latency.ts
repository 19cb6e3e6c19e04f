/**
 * Agent turn figures (issue 9's concurrency acceptance), each beside the fake provider's own
 * direct latency measured in the same run. The stack is `bench/agent_turn_rig.ts`: the real
 * kernel in-process, the real `orchestrator` and `provider-openai-compat` capsules, the OpenAI
 * fake playing `echo.json`. A turn's latency runs from publishing `user.v1.prompt` to receiving
 * its `agent.v1.response`; every answer is checked to be `echo: <its own token>`.
 *
 * 1. Baseline, the fake direct: one streaming chat completion (`fetch` + reading the SSE body
 *    like a client), sequential (p50/p99), and `N` at once (throughput, p50/p99).
 * 2. One turn at a time through the daemon socket (one principal): p50/p99 vs the direct
 *    sequential baseline. Goal: p50 under 10× the direct call.
 * 3. `N` turns at once from `N` distinct principals through the daemon socket (one connection
 *    each): throughput and p50/p99 vs the direct concurrent baseline. Goal: all answered, none
 *    dropped; throughput over 50 turns/s on 2 cores.
 * 4. The same `N` published in-process on the bus with the principal stamped.
 *
 * Run: `deno run -A bench/agent_turn_latency.ts [--n 1000] [--max-instances 0,16]`
 * (`--max-instances` runs the concurrent cases once per `runtime.max_instances` value; 0 is the
 * host default, `navigator.hardwareConcurrency`, at least 2).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { collectOpenAiStream, type FakeServer } from "../tests/fakes/mod.ts";
import { AgentRig, promptThroughClient, quantile, type TurnResult } from "./agent_turn_rig.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "1000" },
    "max-instances": { type: "string", default: "0,16" },
    sequential: { type: "string", default: "100" },
  },
});
const N = Number(args.values.n);
const SEQUENTIAL = Number(args.values.sequential);
const POOLS = args.values["max-instances"]!.split(",").map(Number);
const TURN_TIMEOUT_MS = 300_000;
const KEY = "sk-agent-turn-rig-0123456789";

interface Figures {
  label: string;
  count: number;
  ok: number;
  wallMs?: number;
  p50: number;
  p99: number;
}

function figures(label: string, ms: number[], extra: { ok?: number; wallMs?: number } = {}) {
  return {
    label,
    count: ms.length,
    ok: extra.ok ?? ms.length,
    ...(extra.wallMs !== undefined ? { wallMs: extra.wallMs } : {}),
    p50: quantile(ms, 0.5),
    p99: quantile(ms, 0.99),
  } satisfies Figures;
}

/** One streaming chat completion straight to the fake; its ms. */
async function direct(fake: FakeServer, text: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${fake.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "fake-model",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: text }],
    }),
  });
  const reply = await collectOpenAiStream(res);
  const ms = performance.now() - t0;
  if (reply.text !== `echo: ${text}`) throw new Error(`The fake answered ${reply.text}`);
  return ms;
}

function checked(
  results: PromiseSettledResult<TurnResult>[],
  names: string[],
  tok: (p: string) => string,
) {
  let ok = 0;
  const ms: number[] = [];
  const problems: string[] = [];
  results.forEach((r, i) => {
    if (r.status === "rejected") {
      problems.push(`${names[i]}: ${(r.reason as Error).message}`);
      return;
    }
    const v = r.value;
    if (v.principal === names[i] && v.text === `echo: ${tok(names[i])}` && v.foreign === 0) ok++;
    else problems.push(`${names[i]}: ${JSON.stringify(v).slice(0, 200)}`);
    ms.push(v.ms);
  });
  for (const p of problems.slice(0, 3)) console.error(`  problem: ${p}`);
  return { ok, ms };
}

const fmt = (x: number) => x.toFixed(1).padStart(8);
function row(f: Figures, base?: Figures): string {
  const thr = f.wallMs !== undefined ? `${(f.count / f.wallMs * 1000).toFixed(1)}/s` : "";
  const ratio = base
    ? `  p50 ${(f.p50 / base.p50).toFixed(1)}× p99 ${(f.p99 / base.p99).toFixed(1)}×`
    : "";
  const thrRatio = base?.wallMs !== undefined && f.wallMs !== undefined
    ? `  throughput ${((f.count / f.wallMs) / (base.count / base.wallMs)).toFixed(2)}×`
    : "";
  return `${f.label.padEnd(58)} ${String(f.ok).padStart(5)}/${String(f.count).padEnd(5)} ` +
    `p50 ${fmt(f.p50)} ms  p99 ${fmt(f.p99)} ms ${thr.padStart(9)}${ratio}${thrRatio}`;
}

console.log(
  `agent turn latency: N=${N}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
);
for (const pool of POOLS) {
  const rig = await AgentRig.start({ maxInstances: pool });
  try {
    console.log(`\nruntime.max_instances = ${pool}${pool === 0 ? " (host default)" : ""}`);
    // Warm up: instances, compiled code, connections to the fake.
    for (let i = 0; i < 10; i++) await rig.promptOnBus("default", `warm ${i}`, 60_000);
    for (let i = 0; i < 20; i++) await direct(rig.fake, `warm ${i}`);

    const seqDirect: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) seqDirect.push(await direct(rig.fake, `seq ${i}`));
    const baseSeq = figures("fake direct, one at a time (baseline)", seqDirect);

    const t0 = performance.now();
    const conc = await Promise.all(Array.from({ length: N }, (_, i) => direct(rig.fake, `c ${i}`)));
    const baseConc = figures(`fake direct, ${N} at once (baseline)`, conc, {
      wallMs: performance.now() - t0,
    });

    const one = await rig.connect("solo");
    const seqTurns: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const r = await promptThroughClient(one, `solo ${i}`, TURN_TIMEOUT_MS);
      if (r.text !== `echo: solo ${i}`) throw new Error(`Turn answered ${JSON.stringify(r)}`);
      seqTurns.push(r.ms);
    }
    await one.close();
    const turnSeq = figures("turn via daemon, one at a time", seqTurns);

    const names = Array.from({ length: N }, (_, i) => `b${pool}x${i}`);
    const tok = (p: string) => `token-${p}`;
    const clients = await rig.connectAll(names);
    let s = performance.now();
    let settled = await Promise.allSettled(
      clients.map((c, i) => promptThroughClient(c, tok(names[i]), TURN_TIMEOUT_MS)),
    );
    let wallMs = performance.now() - s;
    await Promise.allSettled(clients.map((c) => c.close()));
    let c = checked(settled, names, tok);
    const turnDaemon = figures(`${N} turns at once, ${N} principals, via daemon`, c.ms, {
      ok: c.ok,
      wallMs,
    });

    const busNames = names.map((p) => `${p}b`);
    s = performance.now();
    settled = await Promise.allSettled(
      busNames.map((p) => rig.promptOnBus(p, tok(p), TURN_TIMEOUT_MS)),
    );
    wallMs = performance.now() - s;
    c = checked(settled, busNames, tok);
    const turnBus = figures(`${N} turns at once, ${N} principals, on the bus`, c.ms, {
      ok: c.ok,
      wallMs,
    });

    console.log(row(baseSeq));
    console.log(row(turnSeq, baseSeq));
    console.log(row(baseConc));
    console.log(row(turnDaemon, baseConc));
    console.log(row(turnBus, baseConc));
  } finally {
    await rig[Symbol.asyncDispose]();
  }
}
