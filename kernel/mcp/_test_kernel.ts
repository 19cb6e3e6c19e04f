/**
 * Folder-private test fixture: a small kernel around an {@link McpHost} — temp Astrid home and
 * workspace, memory store, audit log, security pipeline with an in-process approval broker,
 * bus, session overlays — and the real `@modelcontextprotocol/server-filesystem` as a spec.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type AuditEntry, AuditLog } from "../audit/mod.ts";
import { TokenStore } from "../capabilities/mod.ts";
import { systemClock } from "../clock.ts";
import { type AstridConfig, DEFAULT_CONFIG } from "../config/mod.ts";
import { KeyPair } from "../crypto/mod.ts";
import { EventBus, type Timers } from "../events/mod.ts";
import { AstridHome } from "../home/mod.ts";
import {
  type ApprovalRequest,
  type ApprovalResponse,
  InProcessApprovalBroker,
  SecurityInterceptor,
} from "../security/mod.ts";
import { MemoryStore } from "../storage/mod.ts";
import { overlaySessionDir, OverlayVfs } from "../vfs/mod.ts";
import type { McpLauncher } from "./launcher.ts";
import { DirectLauncher } from "./launcher.ts";
import { McpHost, type McpHostOptions } from "./mcp_host.ts";
import type { McpLogEntry, RestartPolicy } from "./server_instance.ts";
import type { McpServerSpec } from "./server_spec.ts";
import type { McpSettings } from "./servers_toml.ts";

/** The filesystem server's entry script. */
export const FS_SERVER_SCRIPT = fileURLToPath(
  new URL(
    "../../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
    import.meta.url,
  ),
);

/** A spec running the filesystem server over `${workspace}`. */
export function fsServerSpec(overrides: Partial<McpServerSpec> = {}): McpServerSpec {
  return {
    name: "fs",
    command: "node",
    args: [FS_SERVER_SCRIPT, "${workspace}"],
    env: {},
    origin: { kind: "operator", file: "/etc/servers.toml", line: 1 },
    dir: "/",
    fsRead: ["*"],
    fsWrite: ["*"],
    network: false,
    ...overrides,
  };
}

/** Options of {@link makeMcpKernel}. */
export interface McpKernelOptions {
  /** The security mode (default `autonomous`). */
  mode?: string;
  /** Policy denied paths. */
  deniedPaths?: string[];
  /** The launcher (default `DirectLauncher`, with allow_unsandboxed). */
  launcher?: McpLauncher;
  /** How the human answers approvals (default allow once). */
  answer?: (request: ApprovalRequest) => ApprovalResponse;
  /** Restart timers (default real). */
  timers?: Timers;
  /** Restart policy. */
  restart?: RestartPolicy;
  /** Settings overrides (default: unsandboxed allowed with the default launcher, no idle stop). */
  settings?: Partial<McpSettings>;
  /** Extra host options. */
  host?: Partial<McpHostOptions>;
}

/** The fixture. */
export interface McpKernel {
  /** Temp root. */
  readonly root: string;
  /** The Astrid home. */
  readonly home: AstridHome;
  /** The workspace (real path). */
  readonly workspace: string;
  /** Its id. */
  readonly workspaceId: string;
  /** The bus. */
  readonly bus: EventBus;
  /** The audit log. */
  readonly audit: AuditLog;
  /** The pipeline. */
  readonly security: SecurityInterceptor;
  /** The engine. */
  readonly host: McpHost;
  /** Log lines. */
  readonly logs: McpLogEntry[];
  /** Approval requests the frontend saw. */
  readonly approvals: ApprovalRequest[];
  /** The overlay of (principal, session). */
  overlay(principal?: string, session?: string): Promise<OverlayVfs>;
  /** Audit entries of `principal`. */
  auditEntries(principal?: string): Promise<AuditEntry[]>;
  /** Publishes a tool call and resolves with its result payload. */
  call(
    tool: string,
    args: Record<string, unknown>,
    options?: { principal?: string; session?: string; callId?: string; workspace?: boolean },
  ): Promise<Record<string, unknown>>;
  /** Stops everything and removes the temp dir. */
  close(): Promise<void>;
}

/** Builds the fixture. */
export async function makeMcpKernel(options: McpKernelOptions = {}): Promise<McpKernel> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-" }));
  const home = await AstridHome.open(join(root, "home"));
  const workspace = join(root, "workspace");
  await Deno.mkdir(workspace);
  const workspaceId = "w1";
  const store = new MemoryStore();
  const key = await KeyPair.generate();
  const clock = systemClock;
  const audit = new AuditLog(store, { signer: key, clock });
  const broker = new InProcessApprovalBroker();
  const approvals: ApprovalRequest[] = [];
  const cfg = structuredClone(DEFAULT_CONFIG) as unknown as {
    security: { mode: string; policy: { denied_paths: string[] } };
  };
  cfg.security.mode = options.mode ?? "autonomous";
  if (options.deniedPaths !== undefined) cfg.security.policy.denied_paths = options.deniedPaths;
  const security = new SecurityInterceptor({
    config: cfg as unknown as AstridConfig,
    audit,
    tokens: new TokenStore(store, { clock, trustedIssuers: [key.publicKey] }),
    store,
    signer: key,
    broker,
    clock,
  });
  const answer = options.answer ?? (() => ({ answer: "allow_once" as const }));
  const frontends = new Set<string>();
  const bus = new EventBus({ clock });
  const overlays = new Map<string, Promise<OverlayVfs>>();
  const overlay = (principal = "default", session = "s1"): Promise<OverlayVfs> => {
    const k = `${principal}\0${session}`;
    if (!frontends.has(k)) {
      frontends.add(k);
      const handle = broker.attach(principal, session, {
        interactive: true,
        onRequest: (r) => {
          approvals.push(r);
          handle.respond(r.id, answer(r));
        },
      });
    }
    let o = overlays.get(k);
    if (o === undefined) {
      o = OverlayVfs.open(workspace, overlaySessionDir(home, { principal, workspaceId, session }));
      overlays.set(k, o);
    }
    return o;
  };
  const logs: McpLogEntry[] = [];
  const host = new McpHost({
    bus,
    security,
    audit,
    launcher: options.launcher ?? new DirectLauncher(),
    settings: {
      allowUnsandboxed: options.launcher === undefined,
      idleTimeoutSecs: 0,
      callTimeoutSecs: 60,
      ...options.settings,
    },
    scratchDir: join(root, "scratch"),
    resolveScope: async ({ principal, session, workspaceId: ws }) =>
      ws === workspaceId
        ? { workspaceRoot: workspace, overlay: await overlay(principal, session) }
        : undefined,
    log: (e) => logs.push(e),
    clock,
    ...(options.timers === undefined ? {} : { timers: options.timers }),
    ...(options.restart === undefined ? {} : { restart: options.restart }),
    ...options.host,
  });
  const call: McpKernel["call"] = async (tool, args, o = {}) => {
    const principal = (o.principal ?? "default") as never;
    const session = o.session ?? "s1";
    await overlay(principal, session);
    const reply = await bus.request(`tool.v1.execute.${tool}`, {
      arguments: args,
      session,
      ...(o.workspace === false ? {} : { workspace_id: workspaceId }),
      ...(o.callId === undefined ? {} : { call_id: o.callId }),
    } as never, {
      ctx: { principal, source: { kind: "kernel", name: "test" } },
      reply_to: `tool.v1.execute.${tool}.result`,
      timeoutMs: 60_000,
    });
    return (reply.payload.kind === "json" ? reply.payload.value : {}) as Record<string, unknown>;
  };
  return {
    root,
    home,
    workspace,
    workspaceId,
    bus,
    audit,
    security,
    host,
    logs,
    approvals,
    overlay,
    auditEntries: async (principal = "default") => await audit.list(principal as never),
    call,
    async close() {
      await host.close();
      for (const o of overlays.values()) (await o).close();
      bus.close();
      await audit.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}
