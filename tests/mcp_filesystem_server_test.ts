/**
 * The MCP engine against a real MCP server from the npm registry,
 * `@modelcontextprotocol/server-filesystem`, run with `node` in the namespace sandbox over a
 * session overlay, its root argument `${workspace}`:
 *
 * - its tools are listed and called through the bus (`tool.v1.execute.fs__<tool>`), and its
 *   root is the overlay view (it sees a file written through the VFS, not yet in the
 *   workspace);
 * - a write through it lands in the overlay's diff, not in the workspace, until commit;
 * - while it runs it holds the session, and yields it to a VFS write as soon as it is idle;
 * - a call naming a path outside the allowed paths (outside the workspace, through an escaping
 *   symlink, outside a narrower grant, or a policy-denied `.env`) is denied by Astrid, audited,
 *   and never reaches the server;
 * - killing the server in the middle of a call returns an error, and the server is restarted;
 * - one instance serves a (principal, workspace): a call of another session moves it to that
 *   session's overlay (the first session's writes folded into its own overlay, not the
 *   other's), and the end of a session stops it without forgetting it;
 * - a server whose grants are narrower than the workspace (`workspace://docs`) runs in a
 *   sandbox that shows it only those paths: asked directly for another workspace file, it finds
 *   nothing there;
 * - a wrong pinned hash refuses the server; the right one runs it.
 *
 * Skipped (with the reason printed) only when the machine cannot make the namespace sandbox.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AuditLog } from "../kernel/audit/mod.ts";
import { TokenStore } from "../kernel/capabilities/mod.ts";
import { systemClock } from "../kernel/clock.ts";
import { type AstridConfig, DEFAULT_CONFIG } from "../kernel/config/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { EventBus, type JsonValue } from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import {
  hashFile,
  McpConnection,
  McpHost,
  type McpLaunch,
  type McpLauncher,
  type McpServerSpec,
  SandboxLauncher,
  type StdioProcess,
} from "../kernel/mcp/mod.ts";
import { NativeSandbox, sandboxStatus } from "../kernel/sandbox/mod.ts";
import { InProcessApprovalBroker, SecurityInterceptor } from "../kernel/security/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { overlaySessionDir, OverlayVfs } from "../kernel/vfs/mod.ts";

const FS_SERVER = fileURLToPath(
  new URL(
    "../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
    import.meta.url,
  ),
);
const status = await sandboxStatus();

/** Records every JSON-RPC request the engine sends to the server. */
class Spy implements McpLauncher {
  readonly sandboxed: boolean;
  readonly holdsSession: boolean;
  readonly sent: { method?: string; params?: { name?: string; arguments?: unknown } }[] = [];
  readonly launches: McpLaunch[] = [];
  readonly #inner: McpLauncher;
  #onCall: (() => void) | undefined;
  constructor(inner: McpLauncher) {
    this.#inner = inner;
    this.sandboxed = inner.sandboxed;
    this.holdsSession = inner.holdsSession;
  }
  async spawn(launch: McpLaunch): Promise<StdioProcess> {
    this.launches.push(launch);
    const p = await this.#inner.spawn(launch);
    const writer = p.stdin.getWriter();
    const decoder = new TextDecoder();
    const stdin = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        for (const line of decoder.decode(chunk).split("\n")) {
          if (line.trim() === "") continue;
          const msg = JSON.parse(line);
          this.sent.push(msg);
          if (msg.method === "tools/call") this.#onCall?.();
        }
        await writer.write(chunk);
      },
      close: () => writer.close(),
    });
    return { ...p, stdin };
  }
  /** Resolves when the next `tools/call` is written to the server. */
  nextCall(): Promise<void> {
    return new Promise((resolve) => (this.#onCall = resolve));
  }
  calls(): string[] {
    return this.sent.filter((m) => m.method === "tools/call").map((m) =>
      `${m.params?.name} ${JSON.stringify(m.params?.arguments)}`
    );
  }
}

interface Fixture {
  workspace: string;
  host: McpHost;
  spy: Spy;
  overlay: OverlayVfs;
  audit: AuditLog;
  overlayOf(session: string): Promise<OverlayVfs>;
  call(
    tool: string,
    args: Record<string, unknown>,
    session?: string,
  ): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

async function fixture(spec: Partial<McpServerSpec> = {}): Promise<Fixture> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-fs-" }));
  const home = await AstridHome.open(join(root, "home"));
  const workspace = join(root, "workspace");
  await Deno.mkdir(join(workspace, "docs"), { recursive: true });
  await Deno.writeTextFile(join(workspace, "README.md"), "# hello\n");
  await Deno.writeTextFile(join(workspace, ".env"), "TOKEN=secret\n");
  await Deno.mkdir(join(root, "outside"));
  await Deno.writeTextFile(join(root, "outside", "secret.txt"), "secret\n");
  await Deno.symlink(join(root, "outside"), join(workspace, "escape"));
  const store = new MemoryStore();
  const key = await KeyPair.generate();
  const audit = new AuditLog(store, { signer: key, clock: systemClock });
  const config = structuredClone(DEFAULT_CONFIG) as unknown as {
    security: { mode: string; policy: { denied_paths: string[] } };
  };
  config.security.mode = "autonomous";
  config.security.policy.denied_paths = ["**/.env"];
  const security = new SecurityInterceptor({
    config: config as unknown as AstridConfig,
    audit,
    tokens: new TokenStore(store, { clock: systemClock, trustedIssuers: [key.publicKey] }),
    store,
    signer: key,
    broker: new InProcessApprovalBroker(),
    clock: systemClock,
  });
  const bus = new EventBus();
  const overlays = new Map<string, OverlayVfs>();
  const overlayOf = async (session: string) => {
    let o = overlays.get(session);
    if (o === undefined) {
      o = await OverlayVfs.open(
        workspace,
        overlaySessionDir(home, { principal: "default", workspaceId: "w1", session }),
      );
      overlays.set(session, o);
    }
    return o;
  };
  const overlay = await overlayOf("s1");
  const spy = new Spy(
    new SandboxLauncher(new NativeSandbox(), { scratchDir: join(root, "scratch", "overlays") }),
  );
  const host = new McpHost({
    bus,
    security,
    audit,
    launcher: spy,
    scratchDir: join(root, "scratch"),
    settings: { allowUnsandboxed: false, idleTimeoutSecs: 0, callTimeoutSecs: 60 },
    resolveScope: async ({ workspaceId, session }) =>
      workspaceId === "w1"
        ? { workspaceRoot: workspace, overlay: await overlayOf(session) }
        : undefined,
    restart: { baseMs: 10, maxMs: 100, maxFailures: 3, stableMs: 60_000 },
  });
  await host.addServers([{
    name: "fs",
    command: "node",
    args: [FS_SERVER, "${workspace}"],
    env: {},
    origin: { kind: "operator", file: join(home.etc, "servers.toml"), line: 1 },
    dir: home.etc,
    fsRead: ["*"],
    fsWrite: ["workspace://docs"],
    network: false,
    ...spec,
  }]);
  return {
    workspace,
    host,
    spy,
    overlay,
    audit,
    overlayOf,
    async call(tool, args, session = "s1") {
      const reply = await bus.request(`tool.v1.execute.${tool}`, {
        arguments: args as JsonValue,
        session,
        workspace_id: "w1",
      }, {
        ctx: { principal: "default" as never, source: { kind: "kernel", name: "test" } },
        reply_to: `tool.v1.execute.${tool}.result`,
        timeoutMs: 60_000,
      });
      return (reply.payload.kind === "json" ? reply.payload.value : {}) as Record<string, unknown>;
    },
    async close() {
      await host.close();
      for (const o of overlays.values()) o.close();
      bus.close();
      await audit.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

Deno.test({
  name: "server-filesystem runs sandboxed over the session overlay and is called through the bus",
  ignore: !status.available,
  async fn(t) {
    const f = await fixture();
    try {
      const [s] = await f.host.start();
      await t.step("its tools are listed as fs__<tool>", () => {
        assert.equal(s.state, "ready", s.error);
        assert.equal(s.sandboxed, true);
        for (const name of ["fs__read_text_file", "fs__write_file", "fs__list_directory"]) {
          assert.ok(s.tools.includes(name), name);
        }
        assert.equal(f.host.tools().find((x) => x.name === "fs__read_text_file")?.readOnly, true);
      });
      await t.step("its root is the overlay view of the workspace", async () => {
        await f.overlay.writeFile("docs/from-vfs.md", new TextEncoder().encode("via the VFS\n"));
        const allowed = await f.call("fs__list_allowed_directories", {});
        assert.match(String(allowed.content), new RegExp(f.workspace));
        const listing = await f.call("fs__list_directory", { path: join(f.workspace, "docs") });
        assert.equal(listing.is_error, false, String(listing.content));
        assert.match(String(listing.content), /from-vfs\.md/);
        const readme = await f.call("fs__read_text_file", { path: "README.md" });
        assert.equal(readme.content, "# hello\n");
      });
      await t.step(
        "a write lands in the overlay diff, not in the workspace, until commit",
        async () => {
          const w = await f.call("fs__write_file", {
            path: join(f.workspace, "docs", "new.md"),
            content: "written by MCP\n",
          });
          assert.equal(w.is_error, false, String(w.content));
          await assert.rejects(
            Deno.stat(join(f.workspace, "docs", "new.md")),
            Deno.errors.NotFound,
          );
          await f.host.settle({ principal: "default", workspaceId: "w1", session: "s1" });
          const diff = await f.overlay.diff();
          assert.deepEqual(diff.map((c) => [c.path, c.change]), [
            ["docs/from-vfs.md", "added"],
            ["docs/new.md", "added"],
          ]);
          await assert.rejects(
            Deno.stat(join(f.workspace, "docs", "new.md")),
            Deno.errors.NotFound,
          );
          const again = await f.call("fs__read_text_file", { path: "docs/new.md" });
          assert.equal(again.content, "written by MCP\n", "restarted over the folded overlay");
          await f.host.settle({ principal: "default", workspaceId: "w1" });
          const r = await f.overlay.commit();
          assert.equal(r.conflicts.length, 0);
          assert.equal(
            await Deno.readTextFile(join(f.workspace, "docs", "new.md")),
            "written by MCP\n",
          );
        },
      );
      await t.step(
        "calls outside the allowed paths are denied before the server sees them",
        async () => {
          const before = f.spy.calls().length;
          const cases: [Record<string, unknown>, string, RegExp][] = [
            [{ path: "/etc/passwd" }, "fs__read_text_file", /outside the paths the server may use/],
            [{ path: "escape/secret.txt" }, "fs__read_text_file", /symlink/i],
            [{ path: "README.md", content: "x" }, "fs__write_file", /outside the workspace paths/],
            [{ path: ".env" }, "fs__read_text_file", /denied path/],
            [
              { source: "docs/new.md", destination: "/tmp/stolen.md" },
              "fs__move_file",
              /"\/tmp\/stolen\.md"/,
            ],
          ];
          for (const [args, tool, why] of cases) {
            const r = await f.call(tool, args);
            assert.equal(r.is_error, true, JSON.stringify(args));
            assert.match(String(r.content), why);
          }
          assert.equal(f.spy.calls().length, before, f.spy.calls().slice(before).join("\n"));
          const denied = (await f.audit.list("default", { limit: 1000 })).filter((e) =>
            e.decision === "denied"
          );
          assert.deepEqual(denied.map((e) => e.layer), [
            "manifest",
            "manifest",
            "manifest",
            "policy",
            "manifest",
          ]);
        },
      );
      await t.step("a running server yields its session to a waiting VFS write", async () => {
        await f.call("fs__list_directory", { path: f.workspace });
        assert.equal(f.host.servers()[0].instances[0].state, "running");
        await f.overlay.writeFile("docs/later.md", new TextEncoder().encode("later\n"));
        assert.equal(f.host.servers()[0].instances[0].state, "stopped");
        const r = await f.call("fs__read_text_file", { path: "docs/later.md" });
        assert.equal(r.content, "later\n");
      });
      await t.step("killing the server mid-call returns an error and it is restarted", async () => {
        const fifo = join(f.workspace, "docs", "pipe");
        await new Deno.Command("mkfifo", { args: [fifo] }).output();
        const sent = f.spy.nextCall();
        const blocked = f.call("fs__read_text_file", { path: "docs/pipe" });
        await sent;
        const [inst] = f.host.servers()[0].instances.filter((i) => i.state === "running");
        Deno.kill(inst.pid!, "SIGKILL");
        const r = await blocked;
        assert.equal(r.is_error, true);
        assert.equal((r.error as { code: string }).code, "MCP_SERVER_EXITED");
        const after = await f.call("fs__read_text_file", { path: "README.md" });
        assert.equal(after.content, "# hello\n");
        const [restarted] = f.host.servers()[0].instances;
        assert.equal(restarted.state, "running");
        assert.notEqual(restarted.pid, inst.pid);
        assert.equal(restarted.failures, 1);
      });
    } finally {
      await f.close();
    }
  },
});

Deno.test({
  name: "server-filesystem with a pinned hash: refused on mismatch, run on match",
  ignore: !status.available,
  async fn() {
    const bad = await fixture({ hash: `blake3:${"1".repeat(64)}` });
    try {
      const [s] = await bad.host.start();
      assert.equal(s.state, "refused");
      assert.equal(s.code, "MCP_HASH_MISMATCH");
      assert.match(
        s.error!,
        /Refused to start MCP server "fs": script ".*server-filesystem.*index\.js"/,
      );
      assert.deepEqual(bad.host.tools(), []);
    } finally {
      await bad.close();
    }
    const good = await fixture({ hash: await hashFile(await Deno.realPath(FS_SERVER)) });
    try {
      const [s] = await good.host.start();
      assert.equal(s.state, "ready", s.error);
    } finally {
      await good.close();
    }
  },
});

Deno.test({
  name: "McpHost runs one server-filesystem per (principal, workspace), moved between sessions",
  ignore: !status.available,
  async fn(t) {
    const f = await fixture();
    const instances = () => f.host.servers()[0].instances;
    const read = (session: string) =>
      f.call("fs__read_text_file", { path: join(f.workspace, "docs", "a.md") }, session);
    try {
      await f.host.start();
      await t.step(
        "a session's call starts the workspace's instance over its overlay",
        async () => {
          const r = await f.call(
            "fs__write_file",
            { path: join(f.workspace, "docs", "a.md"), content: "from s1\n" },
            "s1",
          );
          assert.equal(r.is_error, false, JSON.stringify(r));
          assert.deepEqual(instances().map((i) => [i.session, i.state]), [["s1", "running"]]);
        },
      );
      await t.step("another session's call moves the same instance to its overlay", async () => {
        const first = instances()[0].pid;
        const r = await read("s2");
        assert.equal(r.is_error, true, "s2's overlay does not hold s1's write");
        assert.equal(instances().length, 1, "still one instance for the workspace");
        assert.equal(instances()[0].session, "s2");
        assert.notEqual(instances()[0].pid, first, "restarted over s2's overlay");
        const s1 = await f.overlayOf("s1");
        assert.equal(new TextDecoder().decode(await s1.readFile("docs/a.md")), "from s1\n");
        assert.equal(await (await f.overlayOf("s2")).exists("docs/a.md"), false);
      });
      await t.step("back on s1, it sees s1's write again", async () => {
        const r = await read("s1");
        assert.equal(r.is_error, false, JSON.stringify(r));
        assert.equal(r.content, "from s1\n");
        assert.equal(instances()[0].session, "s1");
      });
      await t.step("the end of its session stops it and keeps it for the workspace", async () => {
        await f.host.settleSession("default", "s1");
        assert.deepEqual(instances().map((i) => [i.session, i.state]), [[undefined, "stopped"]]);
        const r = await read("s2");
        assert.equal(r.is_error, true);
        assert.deepEqual(instances().map((i) => [i.session, i.state]), [["s2", "running"]]);
      });
    } finally {
      await f.close();
    }
  },
});

Deno.test({
  name: "server-filesystem granted workspace://docs sees only docs in its sandbox",
  ignore: !status.available,
  async fn(t) {
    const f = await fixture({ fsRead: ["workspace://docs"], fsWrite: ["workspace://docs"] });
    try {
      await Deno.writeTextFile(join(f.workspace, "docs", "guide.md"), "guide\n");
      await f.host.start();
      await t.step("the engine launches it with the granted paths only", async () => {
        const r = await f.call("fs__list_directory", { path: join(f.workspace, "docs") });
        assert.equal(r.is_error, false, JSON.stringify(r));
        assert.match(String(r.content), /guide\.md/);
        const session = f.spy.launches.find((l) => l.overlay !== undefined);
        assert.deepEqual(session?.workspacePaths, ["docs"]);
      });
      await t.step("a write inside the grant lands in the overlay", async () => {
        const r = await f.call("fs__write_file", {
          path: join(f.workspace, "docs", "new.md"),
          content: "new\n",
        });
        assert.equal(r.is_error, false, JSON.stringify(r));
        await f.host.settle({ principal: "default", workspaceId: "w1" });
        assert.equal(new TextDecoder().decode(await f.overlay.readFile("docs/new.md")), "new\n");
      });
    } finally {
      await f.close();
    }
    // The process itself, asked without the engine's path check in between.
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-view-" }));
    const workspace = join(root, "workspace");
    await Deno.mkdir(join(workspace, "docs"), { recursive: true });
    await Deno.writeTextFile(join(workspace, "docs", "guide.md"), "guide\n");
    await Deno.writeTextFile(join(workspace, "README.md"), "# private\n");
    const home = await AstridHome.open(join(root, "home"));
    const overlay = await OverlayVfs.open(
      workspace,
      overlaySessionDir(home, { principal: "default", workspaceId: "w1", session: "s1" }),
    );
    const launcher = new SandboxLauncher(new NativeSandbox(), { scratchDir: join(root, "scr") });
    const conn = await McpConnection.open(
      await launcher.spawn({
        server: "fs",
        argv: ["node", FS_SERVER, workspace],
        env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
        cwd: workspace,
        overlay,
        readOnly: [join(FS_SERVER, "..", "..", "..", "..")],
        workspacePaths: ["docs"],
      }),
      { server: "fs" },
    );
    try {
      await t.step("asked directly, the process finds nothing outside its grant", async () => {
        const list = await conn.callTool("list_directory", { path: workspace });
        assert.equal(list.isError, undefined, JSON.stringify(list));
        assert.deepEqual(
          (list.content[0] as { text: string }).text.split("\n").filter((l) => l !== ""),
          ["[DIR] docs"],
        );
        const read = await conn.callTool("read_text_file", { path: join(workspace, "README.md") });
        assert.equal(read.isError, true);
        assert.match((read.content[0] as { text: string }).text, /ENOENT|no such file/i);
        const guide = await conn.callTool("read_text_file", {
          path: join(workspace, "docs", "guide.md"),
        });
        assert.equal((guide.content[0] as { text: string }).text, "guide\n");
      });
    } finally {
      await conn.close();
      overlay.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});

if (!status.available) console.error(`mcp_filesystem_server_test skipped: ${status.reason}`);
