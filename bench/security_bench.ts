/**
 * The security gate's decision latency, each figure beside a bare `Map.get` baseline in the
 * same run, and the durable decision (`authorize`, audit append included) beside it.
 *
 * Goals (DESIGN §6, issue 4): a token-covered and an allowance-covered decision through
 * `evaluate` (policy with the default deny list, mode, cached token lookup, allowance lookup,
 * budget check) at p50 < 20 µs. `deno bench` prints avg/p75/p99, not p50: the p50 figures
 * come from `deno run -A bench/security_latency.ts`, which times single calls.
 *
 * Run: `deno bench -A bench/security_bench.ts`
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

const dir = await Deno.makeTempDir({ prefix: "astrid-security-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
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
const PATH = "/work/repo/src/kernel/security/policy.ts";
/** Covered by a pattern token `fs:/work/repo/**` (write). */
const TOKEN_ACTION: SensitiveAction = { ...who, kind: "fs.write", path: PATH };
/** Covered by a session allowance (Allow Session answered once). */
const ALLOWANCE_ACTION: SensitiveAction = { ...who, kind: "fs.delete", path: PATH };

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
if ((await security.authorize(ALLOWANCE_ACTION)).answer !== "allow_session") {
  throw new Error("setup");
}
tui.detach();
for (const [action, layer] of [[TOKEN_ACTION, "token"], [ALLOWANCE_ACTION, "allowance"]] as const) {
  const e = await security.evaluate(action);
  if (e.outcome !== "allow" || e.layer !== layer) throw new Error(`setup: ${JSON.stringify(e)}`);
}

const baseline = new Map([["fs:" + PATH, "allow"]]);

Deno.bench("baseline: Map.get of a cached decision", { group: "decision", baseline: true }, () => {
  if (baseline.get("fs:" + PATH) !== "allow") throw new Error("miss");
});

Deno.bench(
  "evaluate, token-covered fs.write (goal p50 < 20 µs)",
  { group: "decision" },
  async () => {
    if ((await security.evaluate(TOKEN_ACTION)).outcome !== "allow") throw new Error("not allowed");
  },
);

Deno.bench(
  "evaluate, allowance-covered fs.delete (goal p50 < 20 µs)",
  { group: "decision" },
  async () => {
    if ((await security.evaluate(ALLOWANCE_ACTION)).outcome !== "allow") {
      throw new Error("not allowed");
    }
  },
);

Deno.bench("baseline: evaluate, token-covered", { group: "durable", baseline: true }, async () => {
  if ((await security.evaluate(TOKEN_ACTION)).outcome !== "allow") throw new Error("not allowed");
});

Deno.bench(
  "authorize, token-covered (signed audit entry durable in SQLite)",
  { group: "durable" },
  async () => {
    if (!(await security.authorize(TOKEN_ACTION)).allowed) throw new Error("not allowed");
  },
);

Deno.bench(
  "authorize ×64 in parallel, token-covered (one group commit; divide by 64)",
  { group: "durable" },
  async () => {
    const all = await Promise.all(
      Array.from({ length: 64 }, () => security.authorize(TOKEN_ACTION)),
    );
    if (!all.every((a) => a.allowed)) throw new Error("not allowed");
  },
);
