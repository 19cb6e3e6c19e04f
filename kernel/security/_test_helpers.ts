/**
 * Test fixtures of `kernel/security/` (folder-private): a config builder and a wired
 * interceptor over a given store with manual time.
 *
 * @module
 */
import { AuditLog } from "../audit/mod.ts";
import { TokenStore } from "../capabilities/mod.ts";
import { ManualClock } from "../clock.ts";
import { type AstridConfig, DEFAULT_CONFIG, type SecurityMode } from "../config/mod.ts";
import { KeyPair } from "../crypto/mod.ts";
import { ManualTimers } from "../events/mod.ts";
import { MemoryStore, type TransactionalStore } from "../storage/mod.ts";
import { InProcessApprovalBroker } from "./in_process_approval_broker.ts";
import { SecurityInterceptor } from "./security_interceptor.ts";
import type { SensitiveAction } from "./sensitive_action.ts";

/** Overrides of the default config used by tests. */
export interface TestConfig {
  mode?: SecurityMode;
  denied_paths?: string[];
  allowed_paths?: string[];
  denied_hosts?: string[];
  denied_commands?: string[];
  timeout_secs?: number;
  session_usd?: number;
  workspace_usd?: number;
  per_action_usd?: number;
}

/** The default config with `overrides` applied. */
export function testConfig(overrides: TestConfig = {}): AstridConfig {
  const c = structuredClone(DEFAULT_CONFIG) as {
    -readonly [K in keyof AstridConfig]: { -readonly [L in keyof AstridConfig[K]]: unknown };
  };
  const sec = c.security as unknown as Record<string, Record<string, unknown>>;
  const budget = c.budget as Record<string, unknown>;
  if (overrides.mode !== undefined) c.security.mode = overrides.mode;
  for (const k of ["denied_paths", "allowed_paths", "denied_hosts", "denied_commands"] as const) {
    if (overrides[k] !== undefined) sec.policy[k] = overrides[k];
  }
  if (overrides.timeout_secs !== undefined) sec.approval.timeout_secs = overrides.timeout_secs;
  for (const k of ["session_usd", "workspace_usd", "per_action_usd"] as const) {
    if (overrides[k] !== undefined) budget[k] = overrides[k];
  }
  return c as unknown as AstridConfig;
}

/** A wired pipeline and its parts. */
export interface Rig {
  store: TransactionalStore;
  key: KeyPair;
  clock: ManualClock;
  timers: ManualTimers;
  audit: AuditLog;
  tokens: TokenStore;
  broker: InProcessApprovalBroker;
  security: SecurityInterceptor;
  config: AstridConfig;
}

/** Builds a pipeline over `options.store` (default: a new MemoryStore). */
export async function rig(
  overrides: TestConfig = {},
  options: { store?: TransactionalStore; key?: KeyPair; clock?: ManualClock } = {},
): Promise<Rig> {
  const store = options.store ?? new MemoryStore();
  const key = options.key ?? await KeyPair.generate();
  const clock = options.clock ?? new ManualClock();
  const timers = new ManualTimers(clock);
  const audit = new AuditLog(store, { signer: key, clock });
  const tokens = new TokenStore(store, { clock, trustedIssuers: [key.publicKey] });
  const broker = new InProcessApprovalBroker();
  const config = testConfig(overrides);
  const security = new SecurityInterceptor({
    config,
    audit,
    tokens,
    store,
    signer: key,
    broker,
    clock,
    timers,
  });
  return { store, key, clock, timers, audit, tokens, broker, security, config };
}

/** The common fields of test actions. */
export const who = { principal: "default", session: "s1", workspace: "w1" } as const;

/** An `fs.*` action on `path`. */
export function fs(
  kind: "fs.read" | "fs.write" | "fs.delete",
  path: string,
  insideWorkspace = true,
): SensitiveAction {
  return { ...who, kind, path, insideWorkspace };
}

/** Yields to the event loop until `done()` holds (signing and store work run in between). */
export async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((r) => setTimeout(r, 0));
  if (!done()) throw new Error("Condition not reached after 10000 turns of the event loop");
}
