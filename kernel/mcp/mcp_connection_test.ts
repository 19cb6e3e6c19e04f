import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { McpCode, McpError } from "./errors.ts";
import { DirectLauncher, serverEnv } from "./launcher.ts";
import { McpConnection, type McpConnectionOptions, type Tool } from "./mcp_connection.ts";

const SERVER = fileURLToPath(new URL("./_test_server.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

async function open(options: Partial<McpConnectionOptions> = {}): Promise<McpConnection> {
  const process = await new DirectLauncher().spawn({
    server: "t",
    argv: [Deno.execPath(), "run", "-A", "--quiet", `--config=${CONFIG}`, SERVER],
    env: serverEnv({}),
    cwd: "/",
  });
  return await McpConnection.open(process, { server: "t", ...options });
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof McpError, String(err));
    return err.code;
  }
  return "resolved";
}

Deno.test("McpConnection", async (t) => {
  const changed: Tool[][] = [];
  const firstChange = Promise.withResolvers<void>();
  const logs: unknown[] = [];
  let closed = 0;
  const conn = await open({
    onToolsChanged: (tools) => {
      changed.push(tools);
      firstChange.resolve();
    },
    onLog: (line) => logs.push(line),
    onElicit: (params) =>
      Promise.resolve({ action: "accept", content: { colour: "blue", asked: params.message } }),
    onClose: () => closed++,
  });
  try {
    await t.step("open() completes initialize and agrees on a protocol version", () => {
      assert.equal(conn.protocolVersion, "2025-11-25");
      assert.deepEqual(conn.serverInfo, { name: "astrid-test-server", version: "1.2.3" });
      assert.ok(conn.pid > 0);
    });
    await t.step("listTools() follows every page", async () => {
      const tools = await conn.listTools();
      assert.deepEqual(tools.map((x) => x.name), [
        "echo",
        "slow",
        "burst",
        "release",
        "add_tool",
        "ask",
        "log",
        "crash",
        "pid",
      ]);
    });
    await t.step("listResources() and listPrompts() follow pages too", async () => {
      assert.deepEqual((await conn.listResources()).map((r) => r.name), ["r1", "r2", "r3"]);
      assert.deepEqual((await conn.listPrompts()).map((p) => p.name), ["greet"]);
    });
    await t.step("callTool() returns the result", async () => {
      const r = await conn.callTool("echo", { a: 1 });
      assert.deepEqual(r.structuredContent, { a: 1 });
    });
    await t.step("callTool() reports progress and can be cancelled", async () => {
      const abort = new AbortController();
      const progress: unknown[] = [];
      const call = conn.callTool("slow", {}, {
        signal: abort.signal,
        onProgress: (p) => {
          progress.push(p);
          abort.abort();
        },
      });
      assert.equal(await code(call), McpCode.MCP_CANCELLED);
      assert.deepEqual(progress, [{ progress: 1, total: 2, message: "half" }]);
      const done = conn.callTool("slow", {});
      await conn.callTool("release", {});
      assert.deepEqual((await done).content, [{ type: "text", text: "done" }]);
    });
    await t.step("callTool() gets progress written together with its result", async () => {
      const progress: number[] = [];
      const r = await conn.callTool("burst", {}, { onProgress: (p) => progress.push(p.progress) });
      assert.deepEqual(r.content, [{ type: "text", text: "burst" }]);
      assert.deepEqual(progress, [1, 2, 3]);
    });
    await t.step("list_changed re-lists the tools", async () => {
      await conn.callTool("add_tool", {});
      await firstChange.promise;
      assert.equal(changed[0].at(-1)?.name, "extra");
    });
    await t.step("server logs reach onLog", async () => {
      await conn.callTool("log", {});
      assert.deepEqual(logs.at(-1), { level: "warning", logger: "test", data: "careful" });
    });
    await t.step("elicitation requests reach onElicit", async () => {
      const r = await conn.callTool("ask", {});
      assert.deepEqual(JSON.parse((r.content[0] as { text: string }).text), {
        action: "accept",
        content: { colour: "blue", asked: "Pick a colour" },
      });
    });
    await t.step("ping() resolves", async () => {
      await conn.ping();
    });
    await t.step("a server that dies mid-call fails the call, not hangs it", async () => {
      assert.equal(await code(conn.callTool("crash", {})), McpCode.MCP_SERVER_EXITED);
      assert.equal(conn.closed, true);
      assert.equal(closed, 1);
    });
  } finally {
    await conn.close();
  }
});

Deno.test("McpConnection.open() fails with MCP_START_FAILED for a process that does not speak MCP", async () => {
  const process = await new DirectLauncher().spawn({
    server: "t",
    argv: ["sh", "-c", "echo not-json; exit 7"],
    env: serverEnv({}),
    cwd: "/",
  });
  assert.equal(
    await code(McpConnection.open(process, { server: "t" })),
    McpCode.MCP_START_FAILED,
  );
  assert.equal((await process.exited).code, 7);
});
