/**
 * `astrid mcp serve` driven by the official TypeScript MCP SDK `Client`, as an MCP client such
 * as Claude Desktop runs it: a real daemon in a temp `ASTRID_HOME` with a WAT tool capsule
 * installed, and `deno run main.ts mcp serve` spawned over stdio in a workspace. It proves:
 *
 * - initialize, `tools/list` (the capsule's tools), `tools/call` of a WASM capsule tool;
 * - an approval the tool's host call needs is put to the user as MCP elicitation (Approve once
 *   / for this session / always / Deny); "for this session" then holds without asking again;
 * - `notifications/tools/list_changed` arrives after a capsule is installed and the daemon
 *   reloads its capsules, and the new tool is listed;
 * - a client without elicitation gets a denial at once, never a hang;
 * - stdout carries only MCP frames (the SDK would reject anything else);
 * - `astrid mcp servers` and `astrid mcp reload` reach the MCP engine over the daemon;
 * - a call with a progress token gets `notifications/progress` (the SDK's `onprogress`) for the
 *   progress a hosted MCP server reports while the tool runs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";
import { Client } from "@modelcontextprotocol/sdk/client";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  type CallToolResult,
  ElicitRequestSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { BinaryStore, userCapsulesDir, writeInstallRecord } from "../kernel/capsule/mod.ts";
import { bootDaemon, type Daemon, DaemonClient } from "../kernel/daemon/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { hostRequest, watBytes } from "./fixtures/wat_request.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));
const wabt = await wabtInit();

/** A guest whose `echo` returns its invocation and whose `save` writes `saved.txt`. */
function toolGuest(): Uint8Array {
  const req = hostRequest(["workspace://saved.txt", "saved by a capsule"]);
  const m = wabt.parseWat(
    "guest.wat",
    `(module
  (import "astrid" "fs_write_file" (func $write (param i32 i32) (result i64)))
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 32768))
  (func $alloc (export "astrid_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.const 200000)) (then (global.set $heap (i32.const 32768))))
    (local.get $p))
  (func $pack (param $p i32) (param $l i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $l))))
  (data (i32.const 16) "${watBytes(req)}")
  (func (export "tool_echo") (param $p i32) (param $l i32) (result i64)
    (local $o i32)
    (local.set $o (call $alloc (i32.add (local.get $l) (i32.const 4))))
    (i32.store (local.get $o) (i32.const 0))
    (memory.copy (i32.add (local.get $o) (i32.const 4)) (local.get $p) (local.get $l))
    (call $pack (local.get $o) (i32.add (local.get $l) (i32.const 4))))
  (func (export "tool_save") (param $p i32) (param $l i32) (result i64)
    (call $write (i32.const 16) (i32.const ${req.length})))
)`,
    { bulk_memory: true },
  );
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}

const NOTES_MANIFEST = `
[capabilities]
fs_write = ["workspace://"]

[[tool]]
name = "notes_echo"
description = "Echoes its invocation"
handler = "tool_echo"
input_schema = { type = "object", properties = { text = { type = "string" } } }

[[tool]]
name = "notes_save"
description = "Writes saved.txt in the workspace"
handler = "tool_save"
input_schema = { type = "object" }
`;

async function install(home: AstridHome, name: string, manifest: string, wasm: Uint8Array) {
  const dir = join(userCapsulesDir(home, principalId("default")), name);
  await Deno.mkdir(dir, { recursive: true });
  const hash = await new BinaryStore(home.bin).put(wasm);
  await writeInstallRecord(dir, {
    manifestText: `[package]\nname = "${name}"\nversion = "1.0.0"\n\n[wasm]\n${manifest}`,
    meta: {
      name,
      version: "1.0.0",
      wasm_hash: hash,
      source: "test",
      installed_at: new Date().toISOString(),
    },
  });
}

interface Served {
  client: Client;
  elicitations: { message: string; options: string[] }[];
  listChanged: () => Promise<void>;
  stderr: string[];
  close(): Promise<void>;
}

async function serve(
  root: string,
  workspace: string,
  options: { elicitation: boolean; decision?: string },
): Promise<Served> {
  const elicitations: Served["elicitations"] = [];
  const client = new Client(
    { name: "test-client", version: "1.0.0" },
    { capabilities: options.elicitation ? { elicitation: { form: {} } } : {} },
  );
  if (options.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, (req) => {
      const schema = (req.params as { requestedSchema?: { properties?: Record<string, unknown> } })
        .requestedSchema;
      const decision = schema?.properties?.decision as { oneOf?: { const: string }[] } | undefined;
      elicitations.push({
        message: req.params.message,
        options: decision?.oneOf?.map((o) => o.const) ?? [],
      });
      return { action: "accept", content: { decision: options.decision ?? "allow_once" } };
    });
  }
  let changed = Promise.withResolvers<void>();
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    changed.resolve();
  });
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: ["run", "-A", "--quiet", `--config=${CONFIG}`, MAIN, "mcp", "serve"],
    env: { ASTRID_HOME: root, PATH: Deno.env.get("PATH") ?? "", HOME: root },
    cwd: workspace,
    stderr: "pipe",
  });
  const stderr: string[] = [];
  transport.stderr?.on("data", (chunk: Uint8Array) => stderr.push(new TextDecoder().decode(chunk)));
  await client.connect(transport);
  return {
    client,
    elicitations,
    listChanged: async () => {
      await changed.promise;
      changed = Promise.withResolvers<void>();
    },
    stderr,
    close: () => client.close(),
  };
}

function text(r: unknown): string {
  return ((r as CallToolResult).content[0] as { text: string }).text;
}

Deno.test("astrid mcp serve serves the daemon's capsule tools to an SDK client", async (t) => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-serve-" }));
  const home = await AstridHome.open(root);
  const workspace = join(root, "project");
  await Deno.mkdir(join(workspace, ".astrid"), { recursive: true });
  const wasm = toolGuest();
  await install(home, "notes", NOTES_MANIFEST, wasm);
  let daemon: Daemon | undefined;
  const served: Served[] = [];
  try {
    daemon = await bootDaemon({ home: root, env: { get: () => undefined }, echoLog: false });
    const s = await serve(root, workspace, { elicitation: true, decision: "allow_session" });
    served.push(s);
    await t.step("initialize and tools/list show the capsule's tools", async () => {
      assert.equal(s.client.getServerVersion()?.name, "astrid");
      assert.ok(s.client.getServerCapabilities()?.tools?.listChanged);
      const { tools } = await s.client.listTools();
      assert.deepEqual(tools.map((x) => x.name).sort(), ["notes_echo", "notes_save"]);
      const echo = tools.find((x) => x.name === "notes_echo")!;
      assert.equal(echo.description, "Echoes its invocation");
      assert.deepEqual(echo.inputSchema.properties, { text: { type: "string" } });
    });
    await t.step("tools/call runs the WASM tool through the daemon", async () => {
      const r = await s.client.callTool({ name: "notes_echo", arguments: { text: "hi" } });
      assert.equal(r.isError, undefined);
      const invocation = JSON.parse(text(r));
      assert.equal(invocation.tool, "notes_echo");
      assert.deepEqual(invocation.arguments, { text: "hi" });
      assert.equal(invocation.principal, "default");
      assert.equal(typeof invocation.session, "string");
    });
    await t.step(
      "an approval is asked through MCP elicitation and its session scope holds",
      async () => {
        const r = await s.client.callTool({ name: "notes_save", arguments: {} });
        assert.equal(r.isError, undefined, text(r));
        assert.equal(s.elicitations.length, 1);
        assert.match(s.elicitations[0].message, /Astrid asks for approval: write .*saved\.txt/);
        assert.deepEqual(s.elicitations[0].options, [
          "allow_once",
          "allow_session",
          "allow_always",
          "deny",
        ]);
        const again = await s.client.callTool({ name: "notes_save", arguments: {} });
        assert.equal(again.isError, undefined, text(again));
        assert.equal(s.elicitations.length, 1, "Allow Session answered the second call");
      },
    );
    await t.step("installing a capsule sends list_changed and lists the new tool", async () => {
      await install(
        home,
        "extra",
        `[capabilities]\n\n[[tool]]\nname = "extra_echo"\ndescription = "x"\nhandler = "tool_echo"\ninput_schema = { type = "object" }\n`,
        wasm,
      );
      const token = (await Deno.readTextFile(daemon!.paths.token)).trim();
      const admin = await DaemonClient.connect(daemon!.paths.socket, { token, client: "test" });
      try {
        const changed = s.listChanged();
        await admin.call("management", { request: "ReloadCapsules" });
        await changed;
      } finally {
        await admin.close();
      }
      const { tools } = await s.client.listTools();
      assert.ok(tools.some((x) => x.name === "extra_echo"));
    });
    await t.step("a client without elicitation is denied at once", async () => {
      const headless = await serve(root, workspace, { elicitation: false });
      served.push(headless);
      const r = await headless.client.callTool({ name: "notes_save", arguments: {} });
      assert.equal(r.isError, true);
      assert.match(text(r), /No human can be asked|denied/i);
    });
    await t.step("stderr carries the log, stdout only frames", () => {
      assert.match(s.stderr.join(""), /astrid mcp serve: connected as principal "default"/);
    });
  } finally {
    for (const s of served) await s.close().catch(() => {});
    await daemon?.shutdown("test done");
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * A raw MCP stdio server with no imports (it runs in the namespace sandbox, which shows it its
 * own directory only): its tool `count` reports progress 1, 2, 3 of 3 when the request carries
 * a progress token, then answers.
 */
const PROGRESS_SERVER = `import { createInterface } from "node:readline";
const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  if (m.method === "initialize") {
    send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion,
      capabilities: { tools: {} }, serverInfo: { name: "progress", version: "1.0.0" } } });
  } else if (m.method === "tools/list") {
    send({ jsonrpc: "2.0", id: m.id, result: { tools: [{ name: "count",
      description: "Counts to three", inputSchema: { type: "object" } }] } });
  } else if (m.method === "tools/call") {
    const token = m.params._meta?.progressToken;
    for (let i = 1; i <= 3 && token !== undefined; i++) {
      send({ jsonrpc: "2.0", method: "notifications/progress",
        params: { progressToken: token, progress: i, total: 3, message: "step " + i } });
    }
    send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: "counted" }] } });
  } else if (m.id !== undefined && m.method !== undefined) {
    send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "Method not found" } });
  }
});
`;

Deno.test({
  name: "astrid mcp serve relays a hosted MCP server's progress to the SDK client's onprogress",
  async fn(t) {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-progress-" }));
    // The server's script lives outside ASTRID_HOME, which the sandbox hides.
    const serverDir = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-srv-" }));
    const home = await AstridHome.open(root);
    const workspace = join(root, "project");
    await Deno.mkdir(join(workspace, ".astrid"), { recursive: true });
    await Deno.writeTextFile(join(serverDir, "progress.mjs"), PROGRESS_SERVER);
    await Deno.writeTextFile(
      join(home.etc, "servers.toml"),
      `[settings]\nallow_unsandboxed = true\n\n[servers.prog]\ncommand = "node"\nargs = ["${
        join(serverDir, "progress.mjs")
      }"]\n`,
    );
    let daemon: Daemon | undefined;
    let s: Served | undefined;
    try {
      daemon = await bootDaemon({ home: root, env: { get: () => undefined }, echoLog: false });
      s = await serve(root, workspace, { elicitation: true, decision: "allow_once" });
      const { tools } = await s.client.listTools();
      assert.ok(tools.some((x) => x.name === "prog__count"), JSON.stringify(tools));
      const seen: { progress: number; total?: number; message?: string }[] = [];
      const r = await s.client.callTool({ name: "prog__count", arguments: {} }, undefined, {
        onprogress: (p) => void seen.push(p),
      });
      assert.equal(text(r), "counted", s.stderr.join(""));
      await t.step("each progress the server reports reaches onprogress, in order", () => {
        assert.deepEqual(
          seen,
          [1, 2, 3].map((i) => ({ progress: i, total: 3, message: `step ${i}` })),
          s!.stderr.join(""),
        );
      });
      const quiet = await s.client.callTool({ name: "prog__count", arguments: {} });
      assert.equal(text(quiet), "counted", "a call without a token gets no progress");
    } finally {
      await s?.close().catch(() => {});
      await daemon?.shutdown("test done");
      await Deno.remove(root, { recursive: true });
      await Deno.remove(serverDir, { recursive: true });
    }
  },
});
