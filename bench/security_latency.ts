/**
 * Percentiles of the security gate's decision latency, timing single calls with
 * `performance.now()` (which `deno bench` does not report as p50). Each figure is printed
 * beside a baseline timed the same way in the same run (a bare `Map.get`, which measures the
 * timer's own overhead), with the goal.
 *
 * Goal (issue 4): token-covered and allowance-covered decisions at p50 < 20 µs. The durable
 * figure (`authorize`, signed audit entry committed to SQLite) is reported beside it.
 *
 * Run: `deno run -A bench/security_latency.ts`
 *
 * @module
 */
import { join } from "node:path";
import { AuditLog } from "../kernel/audit/mod.ts";
import { mintToken, TokenStore } from "../kernel/capabilities/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { DEFAULT_CONFIG } from "../kernel/config/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import {
  InProcessApprovalBroker,
  SecurityInterceptor,
  type SensitiveAction,
} from "../kernel/security/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";

const dir = await Deno.makeTempDir({ prefix: "astrid-security-latency-" });
try {
  const store = await SqliteStore.open(join(dir, "state.db"));
  const key = await KeyPair.generate();
  const clock = new ManualClock();
  const audit = new AuditLog(store, { signer: key, clock });
  const tokens = new TokenStore(store, { clock, trustedIssuers: [key.publicKey] });
  const broker = new InProcessApprovalBroker();
  const security = new SecurityInterceptor({
    config: { ...DEFAULT_CONFIG, security: { ...DEFAULT_CONFIG.security, mode: "safe" } },
    audit,
    tokens,
    store,
    signer: key,
    broker,
    clock,
  });
  const who = { principal: "default", session: "s1", workspace: "w1", insideWorkspace: true };
  const path = "/work/repo/src/kernel/security/policy.ts";
  const tokenAction: SensitiveAction = { ...who, kind: "fs.write", path };
  const allowanceAction: SensitiveAction = { ...who, kind: "fs.delete", path };
  await tokens.add(
    await mintToken(key, {
      principal: "default",
      resource: "fs:/work/repo/**",
      permissions: ["write"],
      audit_entry_id: "default:0",
    }, { clock }),
  );
  const tui = broker.attach("default", "s1", {
    interactive: true,
    onRequest: (q) => tui.respond(q.id, { answer: "allow_session" }),
  });
  await security.authorize(allowanceAction);
  tui.detach();

  const map = new Map([["fs:" + path, "allow"]]);
  const cases: [string, () => unknown, number][] = [
    ["baseline: Map.get (timer overhead)", () => map.get("fs:" + path), 50_000],
    ["evaluate, token-covered", () => security.evaluate(tokenAction), 50_000],
    ["evaluate, allowance-covered", () => security.evaluate(allowanceAction), 50_000],
    ["authorize, token-covered, durable", () => security.authorize(tokenAction), 2_000],
  ];
  console.log(`security decision latency, single calls (goal: evaluate p50 < 20 µs)`);
  console.log(
    `${"case".padEnd(40)} ${"p50".padStart(10)} ${"p90".padStart(10)} ${"p99".padStart(10)}`,
  );
  for (const [name, fn, n] of cases) {
    for (let i = 0; i < Math.min(n, 5_000); i++) await fn(); // warm up
    const samples = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn();
      samples[i] = performance.now() - t0;
    }
    samples.sort();
    const at = (q: number) => `${(samples[Math.floor(q * (n - 1))] * 1000).toFixed(2)} µs`;
    console.log(
      `${name.padEnd(40)} ${at(0.5).padStart(10)} ${at(0.9).padStart(10)} ${at(0.99).padStart(10)}`,
    );
  }
  await audit.close();
  await store.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}
