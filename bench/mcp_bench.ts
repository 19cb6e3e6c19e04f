/**
 * An MCP tool call round trip through Astrid against the same call made directly with the MCP
 * SDK `Client`, both to the real `@modelcontextprotocol/server-filesystem` (`node`), measured in
 * the same run. Goal (issue 8): through Astrid ≤ 1.3× direct.
 *
 * As DESIGN §6 asks of decision latencies, the ratio counts the gate's own work (policy, mode,
 * cached token check, allowance, budget: `security.authorize` with its audit append resolved at
 * once) and the durable audit is reported beside it as its own figure (a signed entry committed
 * to SQLite with `synchronous=FULL`, one fsync). The full figure — every call waiting for its
 * own durable entry, as in the daemon — is printed too, and so is the same with 16 calls in
 * flight, where the audit log's group commit shares one fsync among them.
 *
 * - baseline: SDK `Client` → stdio → server, `read_text_file` of a 1 KiB file;
 * - through Astrid: `bus.request("tool.v1.execute.fs__read_text_file")` → `McpHost` (path check
 *   through the session overlay, `security.authorize`) → the server (in the namespace sandbox
 *   when this machine has one) → `….result`. Variants: security stubbed (the engine alone);
 *   the gate without its audit append (the goal); the gate with a signed entry per call over
 *   the memory store; over SQLite (durable, as in the daemon); the durable append alone.
 *
 * Two ways to run it:
 * - `deno bench -A bench/mcp_bench.ts`: means and ratios against the baseline (groups);
 * - `deno run -A bench/mcp_bench.ts`: the variants interleaved call by call (p50/p90 and the
 *   ratio), which holds up far better on a loaded machine.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { type AuditEntry, type AuditInput, AuditLog } from "../kernel/audit/mod.ts";
import { TokenStore } from "../kernel/capabilities/mod.ts";
import { systemClock } from "../kernel/clock.ts";
import { type AstridConfig, DEFAULT_CONFIG } from "../kernel/config/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { EventBus } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { DirectLauncher, McpHost, type McpSecurity, SandboxLauncher } from "../kernel/mcp/mod.ts";
import { NativeSandbox, sandboxStatus } from "../kernel/sandbox/mod.ts";
import { InProcessApprovalBroker, SecurityInterceptor } from "../kernel/security/mod.ts";
import { MemoryStore, SqliteStore, type TransactionalStore } from "../kernel/storage/mod.ts";
import { overlaySessionDir, OverlayVfs } from "../kernel/vfs/mod.ts";

const FS_SERVER = fileURLToPath(
  new URL("../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", import.meta.url),
);
const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-bench-" }));
const workspace = join(root, "workspace");
await Deno.mkdir(workspace);
await Deno.writeTextFile(join(workspace, "a.txt"), "x".repeat(1024));
const home = await AstridHome.open(join(root, "home"));
const sandbox = await sandboxStatus();

// ---- baseline: the SDK client straight to the server --------------------------------------------

const direct = new Client({ name: "bench", version: "1" });
await direct.connect(
  new StdioClientTransport({ command: "node", args: [FS_SERVER, workspace], stderr: "ignore" }),
);
const path = join(workspace, "a.txt");

// ---- through Astrid -----------------------------------------------------------------------------

/**
 * The audit log with its append resolved at once, unsigned and unstored: what is left of
 * `authorize` is the gate's own work (DESIGN §6). Only for this bench.
 */
class UnrecordedAudit extends AuditLog {
  #seq = 0;
  override append(input: AuditInput): Promise<AuditEntry> {
    const seq = ++this.#seq;
    return Promise.resolve({ ...input, id: `${input.principal}:${seq}`, seq } as AuditEntry);
  }
}

type Variant = "stub" | "gate" | TransactionalStore;

async function astrid(variant: Variant, name: string) {
  const key = await KeyPair.generate();
  const store = typeof variant === "string" ? new MemoryStore() : variant;
  const audit = variant === "gate"
    ? new UnrecordedAudit(store, { signer: key, clock: systemClock })
    : new AuditLog(store, { signer: key, clock: systemClock });
  const cfg = structuredClone(DEFAULT_CONFIG) as unknown as { security: { mode: string } };
  cfg.security.mode = "autonomous";
  const security: McpSecurity = variant === "stub"
    ? { authorize: () => Promise.resolve({ allowed: true, reservation: null } as never) }
    : new SecurityInterceptor({
      config: cfg as unknown as AstridConfig,
      audit,
      tokens: new TokenStore(store, { clock: systemClock, trustedIssuers: [key.publicKey] }),
      store,
      signer: key,
      broker: new InProcessApprovalBroker(),
      clock: systemClock,
    });
  const bus = new EventBus();
  const overlay = await OverlayVfs.open(
    workspace,
    overlaySessionDir(home, { principal: "default", workspaceId: "w1", session: name }),
  );
  const host = new McpHost({
    bus,
    security,
    audit,
    launcher: sandbox.available
      ? new SandboxLauncher(new NativeSandbox(), { scratchDir: join(root, `scratch-${name}`) })
      : new DirectLauncher(),
    settings: { allowUnsandboxed: true, idleTimeoutSecs: 300, callTimeoutSecs: 60 },
    scratchDir: join(root, `scratch-${name}`),
    resolveScope: () => Promise.resolve({ workspaceRoot: workspace, overlay }),
  });
  await host.addServers([{
    name: "fs",
    command: "node",
    args: [FS_SERVER, "${workspace}"],
    env: {},
    origin: { kind: "operator", file: join(home.etc, "servers.toml") },
    dir: home.etc,
    fsRead: ["*"],
    fsWrite: [],
    network: false,
  }]);
  await host.start();
  const ctx = { principal: "default" as never, source: { kind: "kernel" as const, name: "bench" } };
  const call = async () => {
    const r = await bus.request("tool.v1.execute.fs__read_text_file", {
      arguments: { path },
      session: name,
      workspace_id: "w1",
    }, { ctx, reply_to: "tool.v1.execute.fs__read_text_file.result" });
    const v = r.payload.kind === "json" ? r.payload.value as { is_error: boolean } : null;
    if (v?.is_error !== false) throw new Error(`call failed: ${JSON.stringify(v)}`);
  };
  await call(); // start the session's instance
  return { call, host, overlay, bus, audit };
}

/** `n` calls of `fn` in flight at once. */
function inFlight(n: number, fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    await Promise.all(Array.from({ length: n }, fn));
  };
}

const engine = await astrid("stub", "stub");
const gate = await astrid("gate", "gate");
const memory = await astrid(new MemoryStore(), "mem");
const durable = await astrid(await SqliteStore.open(join(root, "state.db")), "sqlite");
// The durable append alone: the same kind of entry `authorize` writes, on its own database.
const auditKey = await KeyPair.generate();
const auditStore = await SqliteStore.open(join(root, "audit.db"));
const auditOnly = new AuditLog(auditStore, { signer: auditKey, clock: systemClock });
const appendDurable = async () => {
  await auditOnly.append({
    principal: "default",
    action: "tool.execute",
    resource: "tool:fs/read_text_file",
    decision: "allowed",
    reason: "autonomous mode allows native tools",
    layer: "mode",
    rule: "autonomous",
    decider: "policy",
    session: "sqlite",
    details: JSON.stringify({
      workspace: "w1",
      tool: "fs/read_text_file",
      native: true,
      paths: [path],
    }),
  });
};
const FLIGHT = 16;

const goal = `goal ≤ 1.3× direct${sandbox.available ? ", sandboxed" : ", unsandboxed"}`;
const callDirect = async () => {
  await direct.callTool({ name: "read_text_file", arguments: { path } });
};

/** Removes `dir`, opening the mode-000 `work/work` dirs overlayfs leaves behind first. */
function removeTreeSync(dir: string): void {
  const open = (path: string): void => {
    try {
      if (!Deno.lstatSync(path).isDirectory) return;
      Deno.chmodSync(path, 0o700);
      for (const e of Deno.readDirSync(path)) open(join(path, e.name));
    } catch {
      // Gone already.
    }
  };
  open(dir);
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // Gone already.
  }
}

async function teardown(): Promise<void> {
  await direct.close();
  for (const a of [engine, gate, memory, durable]) {
    await a.host.close();
    a.overlay.close();
    a.bus.close();
  }
  await auditOnly.close();
  await Deno.remove(root, { recursive: true }).catch(() => {});
}

if (import.meta.main) {
  // Interleaved: one call of each in turn, so the shared machine's load hits all alike.
  const N = Number(Deno.env.get("BENCH_N") ?? 3000);
  const single: [string, () => Promise<void>][] = [
    ["baseline: SDK client → server (direct)", callDirect],
    ["engine alone, security stubbed", engine.call],
    [`engine + security gate, audit beside (${goal})`, gate.call],
    ["engine + security, signed audit, memory store", memory.call],
    ["engine + security, durable SQLite audit (full)", durable.call],
    ["durable audit append alone (beside the goal)", appendDurable],
  ];
  const flight: [string, () => Promise<void>][] = [
    [`baseline: ${FLIGHT} direct calls in flight`, inFlight(FLIGHT, callDirect)],
    [`engine + security gate, ${FLIGHT} in flight`, inFlight(FLIGHT, gate.call)],
    [`engine + durable SQLite audit, ${FLIGHT} in flight`, inFlight(FLIGHT, durable.call)],
  ];
  const q = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(s.length * p))] * 1000;
  };
  const measure = async (title: string, runs: [string, () => Promise<void>][], n: number) => {
    const times = runs.map(() => [] as number[]);
    for (let i = 0; i < Math.max(10, n / 10); i++) for (const [, fn] of runs) await fn();
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < runs.length; j++) {
        const t0 = performance.now();
        await runs[j][1]();
        times[j].push(performance.now() - t0);
      }
    }
    const base = q(times[0], 0.5);
    console.log(`${title}, ${n} interleaved rounds (µs):`);
    runs.forEach(([name], j) => {
      const p50 = q(times[j], 0.5);
      console.log(
        `  ${name.padEnd(64)} p50 ${p50.toFixed(0).padStart(6)}  p90 ${
          q(times[j], 0.9).toFixed(0).padStart(6)
        }   ${(p50 / base).toFixed(2)}x baseline p50`,
      );
    });
  };
  try {
    await measure("MCP tool call round trip", single, N);
    await measure(
      `MCP tool call round trip, ${FLIGHT} calls in flight (one round = all ${FLIGHT})`,
      flight,
      Math.max(50, Math.floor(N / 10)),
    );
  } finally {
    await teardown();
  }
} else {
  globalThis.addEventListener("unload", () => {
    // deno bench has no teardown hook and does not wait for a promise here: stop the servers
    // (they also exit when their stdin closes with the process) and remove the temp dir now.
    void teardown();
    removeTreeSync(root);
  });

  const group = `mcp tool call round trip (${goal})`;
  Deno.bench({
    name: "SDK client → server-filesystem read_text_file (direct)",
    group,
    baseline: true,
    fn: callDirect,
  });
  Deno.bench({
    name: "bus → McpHost → server, security stubbed (the engine alone)",
    group,
    fn: engine.call,
  });
  Deno.bench({
    name: `bus → McpHost → server + security gate, audit beside (${goal})`,
    group,
    fn: gate.call,
  });
  Deno.bench({
    name: "… + a signed audit entry per call, memory store",
    group,
    fn: memory.call,
  });
  Deno.bench({
    name: "… + a durable signed audit entry per call, SQLite fsync (full figure)",
    group,
    fn: durable.call,
  });
  Deno.bench({
    name: "durable audit append alone, SQLite fsync (reported beside the goal)",
    group,
    fn: appendDurable,
  });

  const flight = `mcp tool call round trip, ${FLIGHT} calls in flight (${goal})`;
  Deno.bench({
    name: `${FLIGHT} direct SDK calls in flight`,
    group: flight,
    baseline: true,
    fn: inFlight(FLIGHT, callDirect),
  });
  Deno.bench({
    name: `${FLIGHT} calls in flight through Astrid + security gate, audit beside`,
    group: flight,
    fn: inFlight(FLIGHT, gate.call),
  });
  Deno.bench({
    name: `${FLIGHT} calls in flight through Astrid, durable audit (group commit shares the fsync)`,
    group: flight,
    fn: inFlight(FLIGHT, durable.call),
  });
}
