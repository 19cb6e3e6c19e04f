/**
 * `astrid audit verify [--principal P] [--pubkey HEX]` and
 * `astrid audit show [--principal P] [--since T] [--limit N] [--json]`.
 *
 * @module
 */
import { type AuditEntry, AuditLog } from "../kernel/audit/mod.ts";
import { fromHex, KeyPair } from "../kernel/crypto/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { DEFAULT_PRINCIPAL, principalId } from "../kernel/identity/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";
import { parsePositiveInt, parseSince, parseVerbArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

const USAGE = `Usage:
  astrid audit verify [--principal P] [--pubkey HEX]
      Verify every audit chain (or P's) against the runtime public key, or HEX
  astrid audit show [--principal P] [--since T] [--limit N] [--json]
      Show the newest entries of P's chain (default: ${DEFAULT_PRINCIPAL})
      T is an ISO date or a duration back from now (30s, 15m, 2h, 7d); N defaults to 50`;

/** Runs `astrid audit …`. */
export async function runAudit(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    io.out(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "verify") return await verify(rest, io);
  if (sub === "show") return await show(rest, io);
  throw new UsageError("audit", `Unknown audit command "${sub}": use verify or show`);
}

async function openLog(): Promise<{ log: AuditLog; store: SqliteStore; home: AstridHome }> {
  const home = await AstridHome.open();
  const store = await SqliteStore.open(home.statePath);
  const signer = {
    publicKey: new Uint8Array(32),
    sign: () => Promise.reject(new Error("read-only")),
  };
  return { log: new AuditLog(store, { signer }), store, home };
}

async function verify(args: string[], io: CliIo): Promise<number> {
  const { values } = parseVerbArgs("audit", args, {
    principal: { type: "string" },
    pubkey: { type: "string" },
  });
  const { log, store, home } = await openLog();
  try {
    const principals = values.principal !== undefined
      ? [principalId(values.principal)]
      : await log.principals();
    if (principals.length === 0) {
      io.out("No audit chains yet: nothing to verify");
      return 0;
    }
    const publicKey = values.pubkey !== undefined
      ? fromHex(values.pubkey, "--pubkey")
      : (await KeyPair.load(home.runtimeKeyPath)).publicKey;
    let failed = 0;
    for (const principal of principals) {
      const report = await log.verify(principal, publicKey);
      if (report.ok) {
        io.out(`ok      ${principal}: ${report.verified} entries verified`);
      } else {
        failed++;
        io.out(
          `BROKEN  ${principal}: ${report.broken!.message} (${report.verified} verified before it)`,
        );
      }
    }
    return failed === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

async function show(args: string[], io: CliIo): Promise<number> {
  const { values } = parseVerbArgs("audit", args, {
    principal: { type: "string" },
    since: { type: "string" },
    limit: { type: "string" },
    json: { type: "boolean" },
  });
  const principal = principalId(values.principal ?? DEFAULT_PRINCIPAL);
  const since = values.since !== undefined
    ? parseSince("audit", values.since, Date.now())
    : undefined;
  const limit = values.limit !== undefined
    ? parsePositiveInt("audit", "--limit", values.limit)
    : 50;
  const { log, store } = await openLog();
  try {
    const entries = await log.list(principal, { since, limit });
    if (values.json) {
      for (const e of entries) io.out(JSON.stringify(e));
      return 0;
    }
    if (entries.length === 0) {
      io.out(`No audit entries for "${principal}"`);
      return 0;
    }
    for (const e of entries) io.out(formatEntry(e));
    return 0;
  } finally {
    await store.close();
  }
}

/** One line per entry: seq, time, decision, layer/decider[rule], action, resource, reason. */
export function formatEntry(e: AuditEntry): string {
  const time = new Date(e.timestamp).toISOString().replace("T", " ").slice(0, 19);
  const by = e.rule !== "" ? `${e.layer}/${e.decider}[${e.rule}]` : `${e.layer}/${e.decider}`;
  return `${String(e.seq).padStart(6)}  ${time}  ${
    e.decision.padEnd(8)
  }  ${by}  ${e.action} ${e.resource}  ${e.reason}`;
}
