import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ManualClock } from "../clock.ts";
import { type BusMessage, ManualTimers } from "../events/mod.ts";
import type { McpElicitor } from "./elicit_relay.ts";
import { McpCode } from "./errors.ts";
import { DirectLauncher, type McpLaunch, type McpLauncher } from "./launcher.ts";
import type { StdioProcess } from "./process_transport.ts";
import type { McpServerSpec } from "./server_spec.ts";
import { makeMcpKernel, type McpKernel } from "./_test_kernel.ts";

const SERVER = fileURLToPath(new URL("./_test_server.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

function testSpec(overrides: Partial<McpServerSpec> = {}): McpServerSpec {
  return {
    name: "t",
    command: "deno",
    args: ["run", "-A", "--quiet", `--config=${CONFIG}`, SERVER],
    env: {},
    origin: { kind: "operator", file: "/etc/servers.toml", line: 3 },
    dir: "/",
    fsRead: [],
    fsWrite: ["workspace://src"],
    network: false,
    ...overrides,
  };
}

/** Records the methods of every JSON-RPC message the engine sends to its servers. */
class SpyLauncher implements McpLauncher {
  readonly sandboxed = false;
  readonly holdsSession = false;
  readonly sent: { method?: string; params?: Record<string, unknown> }[] = [];
  readonly pids: number[] = [];
  readonly #inner = new DirectLauncher();

  async spawn(launch: McpLaunch): Promise<StdioProcess> {
    const p = await this.#inner.spawn(launch);
    this.pids.push(p.pid);
    const writer = p.stdin.getWriter();
    const decoder = new TextDecoder();
    const stdin = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        for (const line of decoder.decode(chunk).split("\n")) {
          if (line.trim() !== "") this.sent.push(JSON.parse(line));
        }
        await writer.write(chunk);
      },
      close: () => writer.close(),
    });
    return { ...p, stdin, kill: p.kill };
  }

  calls(): string[] {
    return this.sent.filter((m) => m.method === "tools/call").map((m) => String(m.params?.name));
  }
}

function payload(msg: BusMessage): Record<string, unknown> {
  return (msg.payload.kind === "json" ? msg.payload.value : {}) as Record<string, unknown>;
}

async function withKernel(
  options: Parameters<typeof makeMcpKernel>[0],
  fn: (k: McpKernel) => Promise<void>,
): Promise<void> {
  const k = await makeMcpKernel({ settings: { allowUnsandboxed: true }, ...options });
  try {
    await fn(k);
  } finally {
    await k.close();
  }
}

Deno.test("McpHost binds a server's tools on the bus as ordinary tools", async (t) => {
  const spy = new SpyLauncher();
  await withKernel({ launcher: spy }, async (k) => {
    await k.host.addServers([testSpec()]);
    const [status] = await k.host.start();
    await t.step("start() probes the catalog through every page, then stops the probe", () => {
      assert.equal(status.state, "ready");
      assert.deepEqual(status.tools, [
        "t__echo",
        "t__slow",
        "t__burst",
        "t__release",
        "t__add_tool",
        "t__ask",
        "t__log",
        "t__crash",
        "t__pid",
      ]);
      assert.equal(status.resources, 3);
      assert.equal(status.prompts, 1);
      assert.deepEqual(status.serverInfo, { name: "astrid-test-server", version: "1.2.3" });
      assert.equal(status.instances.length, 0);
      assert.ok(spy.sent.some((m) => m.method === "initialize"));
    });
    await t.step("tool.v1.request.describe is answered with the tools", async () => {
      const sub = k.bus.subscribe("tool.v1.response.describe.*");
      await k.bus.publish("tool.v1.request.describe", { session: "s1" }, {
        ctx: { principal: "default" as never, source: { kind: "kernel", name: "test" } },
        request_id: "d1",
      });
      const msg = await sub.recv();
      sub.close();
      assert.equal(msg.topic, "tool.v1.response.describe.t");
      const p = payload(msg);
      assert.equal(p.capsule, "mcp:t");
      assert.equal(p.request_id, "d1");
      const echo = (p.tools as { name: string; description: string }[])[0];
      assert.deepEqual(echo.name, "t__echo");
      assert.equal(echo.description, "Test tool echo");
    });
    await t.step("a call is answered on .result like a WASM tool's", async () => {
      const r = await k.call("t__echo", { word: "hi" }, { callId: "c1" });
      assert.equal(r.is_error, false);
      assert.equal(r.content, '{"word":"hi"}');
      assert.equal(r.tool, "t__echo");
      assert.equal(r.call_id, "c1");
      assert.equal(r.session, "s1");
      assert.deepEqual((r.mcp as { structured_content: unknown }).structured_content, {
        word: "hi",
      });
      const [s] = k.host.servers();
      assert.equal(s.instances.length, 1);
      assert.equal(s.instances[0].session, "s1");
      assert.equal(s.instances[0].state, "running");
    });
    await t.step(
      "every call passes the security pipeline as a native tool and is audited",
      async () => {
        const entries = await k.auditEntries();
        const e = entries.find((x) => x.resource === "tool:t/echo");
        assert.ok(e, "audit entry for tool:t/echo");
        assert.equal(e.action, "tool.execute");
        assert.equal(e.decision, "allowed");
        assert.match(e.details, /"native":true/);
      },
    );
    await t.step(
      "a path outside the grants is denied and audited before the server sees it",
      async () => {
        const before = spy.calls().length;
        const r = await k.call("t__echo", { path: "/etc/passwd" });
        assert.equal(r.is_error, true);
        assert.equal((r.error as { code: string }).code, McpCode.MCP_PATH_DENIED);
        assert.match(String(r.content), /may not touch "\/etc\/passwd" \(argument path\)/);
        assert.equal(spy.calls().length, before, "the server never saw the call");
        const entries = await k.auditEntries();
        const denied = entries.find((x) => x.layer === "manifest" && x.decision === "denied");
        assert.ok(denied);
        assert.equal(denied.resource, "tool:t/echo");
        assert.match(denied.details, /"path":"\/etc\/passwd"/);
      },
    );
    await t.step(
      "a workspace path inside the grants goes through with its canonical path",
      async () => {
        const r = await k.call("t__echo", { path: "src/a.ts" });
        assert.equal(r.is_error, false);
        assert.equal(spy.calls().at(-1), "echo");
        const e = (await k.auditEntries()).filter((x) => x.resource === "tool:t/echo").at(-1)!;
        assert.match(e.details, new RegExp(`"paths":\\["${k.workspace}/src/a.ts"\\]`));
      },
    );
    await t.step("server logs go to the log sink", async () => {
      await k.call("t__log", {});
      assert.ok(k.logs.some((l) => l.message === "careful" && l.level === "warn"));
    });
  });
});

Deno.test("McpHost refuses a call the security pipeline denies", async () => {
  await withKernel({ mode: "guided", answer: () => ({ answer: "deny" }) }, async (k) => {
    await k.host.addServers([testSpec()]);
    await k.host.start();
    const r = await k.call("t__pid", {});
    assert.equal(r.is_error, true);
    assert.equal((r.error as { code: string }).code, McpCode.MCP_CALL_DENIED);
    assert.equal(k.approvals.length, 1);
    assert.equal(k.approvals[0].summary, "call tool t/pid");
    assert.equal(k.host.servers()[0].instances.length, 0, "no instance was started");
  });
});

Deno.test("McpHost restarts a server that dies, with backoff, and a call in flight fails", async () => {
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const spy = new SpyLauncher();
  await withKernel({
    launcher: spy,
    timers,
    restart: { baseMs: 250, maxMs: 1_000, maxFailures: 2, stableMs: 60_000 },
  }, async (k) => {
    await k.host.addServers([testSpec()]);
    await k.host.start();
    const pid1 = Number((await k.call("t__pid", {})).content);
    const crashed = await k.call("t__crash", {});
    assert.equal(crashed.is_error, true);
    assert.equal((crashed.error as { code: string }).code, McpCode.MCP_SERVER_EXITED);
    let inst = k.host.servers()[0].instances[0];
    assert.equal(inst.failures, 1);
    assert.equal(inst.state, "backoff");
    const waiting = k.call("t__pid", {});
    timers.advance(249);
    assert.equal(k.host.servers()[0].instances[0].state, "backoff");
    timers.advance(1);
    const pid2 = Number((await waiting).content);
    assert.notEqual(pid2, pid1);
    inst = k.host.servers()[0].instances[0];
    assert.equal(inst.state, "running");
    await k.call("t__crash", {});
    assert.equal(k.host.servers()[0].instances[0].failures, 2);
    const later = k.call("t__pid", {});
    timers.advance(500);
    assert.ok(Number((await later).content) > 0);
    const third = await k.call("t__crash", {});
    assert.equal((third.error as { code: string }).code, McpCode.MCP_SERVER_EXITED);
    const failed = await k.call("t__pid", {});
    assert.equal((failed.error as { code: string }).code, McpCode.MCP_SERVER_FAILED);
    assert.match(String(failed.content), /exited 3 times in a row/);
    const [reloaded] = await k.host.reload("t");
    assert.equal(reloaded.state, "ready");
    assert.ok(Number((await k.call("t__pid", {})).content) > 0);
  });
});

Deno.test("McpHost follows notifications/tools/list_changed and announces it", async () => {
  await withKernel({}, async (k) => {
    await k.host.addServers([testSpec()]);
    await k.host.start();
    const sub = k.bus.subscribe("tool.v1.list_changed");
    await k.call("t__add_tool", {});
    const msg = await sub.recv();
    sub.close();
    assert.equal(payload(msg).server, "t");
    assert.ok((payload(msg).tools as string[]).includes("t__extra"));
    assert.ok(k.host.tools().some((x) => x.name === "t__extra"));
    const r = await k.call("t__extra", {});
    assert.equal(r.is_error, true, "the test server has no handler for it");
    assert.equal((r.error as { code: string }).code, "TOOL_ERROR");
  });
});

Deno.test("McpHost publishes progress and cancels a call on tool.v1.request.cancel", async () => {
  await withKernel({}, async (k) => {
    await k.host.addServers([testSpec()]);
    await k.host.start();
    const progress = k.bus.subscribe("tool.v1.execute.t__slow.progress");
    const call = k.call("t__slow", {}, { callId: "slow-1" });
    const p = await progress.recv();
    progress.close();
    assert.deepEqual(
      {
        progress: payload(p).progress,
        total: payload(p).total,
        message: payload(p).message,
        call_id: payload(p).call_id,
      },
      { progress: 1, total: 2, message: "half", call_id: "slow-1" },
    );
    await k.bus.publish("tool.v1.request.cancel", { call_id: "slow-1" }, {
      ctx: { principal: "default" as never, source: { kind: "kernel", name: "test" } },
    });
    const r = await call;
    assert.equal((r.error as { code: string }).code, McpCode.MCP_CANCELLED);
  });
});

Deno.test("McpHost counts the progress it published in the result (progress_count)", async () => {
  await withKernel({}, async (k) => {
    await k.host.addServers([testSpec()]);
    await k.host.start();
    const progress = k.bus.subscribe("tool.v1.execute.t__burst.progress");
    const r = await k.call("t__burst", {}, { callId: "b-1" });
    assert.equal(r.content, "burst");
    assert.equal(r.progress_count, 3);
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(payload(await progress.recv()).progress);
    progress.close();
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal((await k.call("t__echo", {})).progress_count, undefined);
  });
});

Deno.test("McpHost relays a server's elicitation to the user", async () => {
  const asked: string[] = [];
  const elicitor: McpElicitor = {
    elicit: (q, scope) => {
      asked.push(`${scope.session}:${q.type}:${q.options?.join("|")}`);
      return Promise.resolve("blue");
    },
  };
  await withKernel({ host: { elicitor } }, async (k) => {
    await k.host.addServers([testSpec()]);
    await k.host.start();
    const r = await k.call("t__ask", {});
    assert.deepEqual(JSON.parse(String(r.content)), {
      action: "accept",
      content: { colour: "blue" },
    });
    assert.deepEqual(asked, ["s1:select:red|blue"]);
  });
});

Deno.test("McpHost refuses servers it cannot run safely", async (t) => {
  await t.step("without a sandbox and without the operator's opt-in", async () => {
    await withKernel(
      { launcher: new DirectLauncher(), settings: { allowUnsandboxed: false } },
      async (k) => {
        await k.host.addServers([testSpec()]);
        const [s] = await k.host.start();
        assert.equal(s.state, "refused");
        assert.equal(s.code, McpCode.MCP_SANDBOX_UNAVAILABLE);
        assert.match(
          s.error!,
          /set allow_unsandboxed = true under \[settings\] in etc\/servers\.toml/,
        );
        assert.deepEqual(s.tools, []);
      },
    );
  });
  await t.step("with a pinned hash that does not match", async () => {
    await withKernel({}, async (k) => {
      await k.host.addServers([testSpec({ hash: `blake3:${"0".repeat(64)}` })]);
      const [s] = await k.host.start();
      assert.equal(s.state, "refused");
      assert.equal(s.code, McpCode.MCP_HASH_MISMATCH);
      assert.match(s.error!, /_test_server\.ts" has hash "blake3:[0-9a-f]{64}", not the pinned/);
    });
  });
  await t.step("a name declared twice for the same principals", async () => {
    await withKernel({}, async (k) => {
      await k.host.addServers([testSpec()]);
      await assert.rejects(
        k.host.addServers([testSpec()], { capsuleKey: "x", capsule: "x" }),
        /MCP server "t" is declared twice/,
      );
      await k.host.addServers([testSpec()], { capsuleKey: "y", capsule: "y", principal: "bob" })
        .then(() => assert.fail("overlaps the operator's"), () => {});
    });
  });
});

Deno.test("McpHost answers its management requests on the bus", async () => {
  await withKernel({}, async (k) => {
    await k.host.addServers([testSpec()]);
    await k.host.start();
    const ctx = { principal: "default" as never, source: { kind: "client" as const, name: "c-1" } };
    const servers = await k.bus.request("astrid.v1.mcp.request.servers", {}, { ctx });
    const body = payload(servers) as { ok: boolean; result: { name: string }[] };
    assert.equal(body.ok, true);
    assert.equal(body.result[0].name, "t");
    const bad = await k.bus.request("astrid.v1.mcp.request.reload", { server: "nope" }, { ctx });
    assert.deepEqual(
      (payload(bad) as { error: { code: string } }).error.code,
      McpCode.MCP_SERVER_UNKNOWN,
    );
    const ok = await k.bus.request("astrid.v1.mcp.request.reload", { server: "t" }, { ctx });
    assert.equal((payload(ok) as { ok: boolean }).ok, true);
    assert.ok((await k.auditEntries()).some((e) => e.action === "mcp.reload"));
  });
});

Deno.test("McpHost.removeOwner() unbinds a capsule's tools", async () => {
  await withKernel({}, async (k) => {
    await k.host.addServers([testSpec()], { capsuleKey: "cap", capsule: "cap" });
    await k.host.start();
    assert.equal(k.host.tools()[0].capsule, "cap");
    await k.call("t__pid", {});
    await k.host.removeOwner("cap");
    assert.deepEqual(k.host.servers(), []);
    assert.deepEqual(k.host.tools(), []);
  });
});

Deno.test("McpHost needs a workspace for a server that works on one", async () => {
  await withKernel({}, async (k) => {
    await k.host.addServers([testSpec({ args: [...testSpec().args, "${workspace}"] })]);
    await k.host.start();
    const r = await k.call("t__pid", {}, { workspace: false });
    assert.equal((r.error as { code: string }).code, McpCode.MCP_CALL_INVALID);
  });
});

Deno.test("McpHost runs a server without workspace grants away from the workspace", async () => {
  await withKernel({}, async (k) => {
    await k.host.addServers([
      testSpec({ args: [...testSpec().args, "${workspace}"], fsRead: [], fsWrite: [] }),
    ]);
    await k.host.start();
    const r = await k.call("t__echo", { word: "x" });
    assert.equal(r.is_error, false);
    const [inst] = k.host.servers()[0].instances;
    assert.equal(inst.session, undefined, "not on the session overlay");
    const denied = await k.call("t__echo", { path: "README.md" });
    assert.equal((denied.error as { code: string }).code, McpCode.MCP_PATH_DENIED);
  });
});
