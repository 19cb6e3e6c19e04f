/**
 * An MCP tool call round trip through Astrid against the same call made directly with the MCP
 * SDK `Client`, both to the real `@modelcontextprotocol/server-filesystem` (`node`), measured in
 * the same run. Goal: through Astrid ≤ 1.3× direct.
 *
 * - baseline: SDK `Client` → stdio → server, `read_text_file` of a 1 KiB file;
 * - through Astrid: `bus.request("tool.v1.execute.fs__read_text_file")` → `McpHost` (path check
 *   through the session overlay, `security.authorize` with its signed audit entry) → the server
 *   (in the namespace sandbox when this machine has one) → `….result`. Three variants: the
 *   security pipeline replaced by a stub that allows at once (the engine's own cost: bus, path
 *   check, instance, result), the real pipeline with the audit log over the memory store, and
 *   over SQLite with `synchronous=FULL` (a durable signed entry per call, as in the daemon).
 *
 * Two ways to run it:
 * - `deno bench -A bench/mcp_bench.ts`: means and ratios against the baseline (groups);
 * - `deno run -A bench/mcp_bench.ts`: the four interleaved call by call (p50/p90 and the ratio),
 *   which holds up far better on a loaded machine.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { AuditLog } from "../kernel/audit/mod.ts";
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

async function astrid(store: TransactionalStore | "stub", name: string) {
  const key = await KeyPair.generate();
  const audit = new AuditLog(store === "stub" ? new MemoryStore() : store, {
    signer: key,
    clock: systemClock,
  });
  const cfg = structuredClone(DEFAULT_CONFIG) as unknown as { security: { mode: string } };
  cfg.security.mode = "autonomous";
  const security: McpSecurity = store === "stub"
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
    settings: { allowUnsandboxed: true, idleTimeoutSecs: 0, callTimeoutSecs: 60 },
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

const engine = await astrid("stub", "stub");
const memory = await astrid(new MemoryStore(), "mem");
const durable = await astrid(await SqliteStore.open(join(root, "state.db")), "sqlite");

const goal = `goal ≤ 1.3× direct${sandbox.available ? ", sandboxed" : ", unsandboxed"}`;
const callDirect = async () => {
  await direct.callTool({ name: "read_text_file", arguments: { path } });
};

async function teardown(): Promise<void> {
  await direct.close();
  for (const a of [engine, memory, durable]) {
    await a.host.close();
    a.overlay.close();
    a.bus.close();
  }
  await Deno.remove(root, { recursive: true }).catch(() => {});
}

if (import.meta.main) {
  // Interleaved: one call of each in turn, so the shared machine's load hits all alike.
  const N = Number(Deno.env.get("BENCH_N") ?? 3000);
  const runs: [string, () => Promise<void>][] = [
    ["baseline: SDK client → server (direct)", callDirect],
    ["engine, security stubbed", engine.call],
    [`engine + security, memory audit (${goal})`, memory.call],
    ["engine + security, durable SQLite audit", durable.call],
  ];
  const times = runs.map(() => [] as number[]);
  try {
    for (let i = 0; i < 300; i++) for (const [, fn] of runs) await fn();
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < runs.length; j++) {
        const t0 = performance.now();
        await runs[j][1]();
        times[j].push(performance.now() - t0);
      }
    }
    const q = (xs: number[], p: number) => {
      const s = [...xs].sort((a, b) => a - b);
      return s[Math.min(s.length - 1, Math.floor(s.length * p))] * 1000;
    };
    const base = q(times[0], 0.5);
    console.log(`MCP tool call round trip, ${N} interleaved rounds (µs):`);
    runs.forEach(([name, _], j) => {
      const p50 = q(times[j], 0.5);
      console.log(
        `  ${name.padEnd(64)} p50 ${p50.toFixed(0).padStart(5)}  p90 ${
          q(times[j], 0.9).toFixed(0).padStart(5)
        }   ${(p50 / base).toFixed(2)}x baseline p50`,
      );
    });
  } finally {
    await teardown();
  }
} else {
  globalThis.addEventListener("unload", () => {
    // deno bench has no teardown hook: stop the servers so the process can exit.
    void teardown();
  });

  Deno.bench({
    name: "SDK client → server-filesystem read_text_file (direct)",
    group: "mcp tool call round trip",
    baseline: true,
    fn: callDirect,
  });

  Deno.bench({
    name: "bus → McpHost → server, security stubbed (the engine's own cost)",
    group: "mcp tool call round trip",
    fn: engine.call,
  });

  Deno.bench({
    name: `bus → McpHost → server, memory audit (${goal})`,
    group: "mcp tool call round trip",
    fn: memory.call,
  });

  Deno.bench({
    name: "bus → McpHost → server, durable SQLite audit per call",
    group: "mcp tool call round trip",
    fn: durable.call,
  });
}
