/**
 * Audit log throughput, each beside the irreducible crypto cost measured in the same run:
 * - durable signed appends, group-committed in bursts of 100 (goal ≥ 10,000 appends/s, i.e.
 *   ≤ 10 ms per burst), against 100 bare WebCrypto signatures;
 * - full verification of a 1,000-entry chain, signatures included (goal ≥ 10,000 entries/s,
 *   i.e. ≤ 100 ms per chain), against 1,000 bare WebCrypto verifications.
 *
 * Run: deno task bench bench/audit_bench.ts
 */
import { join } from "node:path";
import { type AuditInput, AuditLog } from "../kernel/audit/mod.ts";
import { blake3, KeyPair, verifySignature } from "../kernel/crypto/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";

const dir = await Deno.makeTempDir();
const key = await KeyPair.generate();
const store = await SqliteStore.open(join(dir, "state.db"));
const log = new AuditLog(store, { signer: key });
const entry = (i: number): AuditInput => ({
  principal: "bench",
  action: "fs.write",
  resource: `workspace://src/file_${i}.ts`,
  decision: "allowed",
  reason: "covered by a capability token",
  layer: "token",
  rule: "tok-1",
  decider: "token",
  session: "s1",
});

const hash = blake3("x");
let n = 0;

Deno.bench("100 bare WebCrypto signatures (baseline)", {
  group: "append",
  baseline: true,
}, async () => {
  await Promise.all(Array.from({ length: 100 }, () => key.sign(hash)));
});
Deno.bench("100 durable signed appends, one burst (goal ≤ 10 ms = 10,000/s)", {
  group: "append",
}, async () => {
  await Promise.all(Array.from({ length: 100 }, () => log.append(entry(n++))));
});
Deno.bench("1 durable signed append, awaited alone (one fsync each)", {
  group: "append",
}, async () => {
  await log.append(entry(n++));
});

// A separate 1,000-entry chain to verify.
const verifyStore = await SqliteStore.open(join(dir, "verify.db"));
const verifyLog = new AuditLog(verifyStore, { signer: key });
await Promise.all(Array.from({ length: 1000 }, (_, i) => verifyLog.append(entry(i))));
const sig = await key.sign(hash);

Deno.bench("1,000 bare WebCrypto verifications (baseline)", {
  group: "verify",
  baseline: true,
}, async () => {
  await Promise.all(Array.from({ length: 1000 }, () => verifySignature(key.publicKey, hash, sig)));
});
Deno.bench("verify a 1,000-entry chain (goal ≤ 100 ms = 10,000 entries/s)", {
  group: "verify",
}, async () => {
  const report = await verifyLog.verify("bench", key.publicKey);
  if (!report.ok || report.verified !== 1000) throw new Error("chain did not verify");
});

globalThis.addEventListener("unload", () => {
  store.close();
  verifyStore.close();
  Deno.removeSync(dir, { recursive: true });
});
