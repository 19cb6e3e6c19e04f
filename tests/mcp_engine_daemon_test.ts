/**
 * The MCP engine beside a real daemon: `McpEngine` opened on the daemon's bus with an operator
 * server in `etc/servers.toml` and a capsule whose `[[mcp_server]]` runs the real
 * `@modelcontextprotocol/server-filesystem` (sandboxed, over the session overlay). It proves:
 *
 * - both kinds of server are declared (the capsule's found through the registry), and their
 *   tools reach an MCP client of `astrid mcp serve` like any capsule tool, the native call
 *   passing the approval the client answers by elicitation;
 * - `astrid mcp servers --json` and `astrid mcp reload <server>` (the real CLI) reach the engine
 *   through the daemon: one server is restarted without restarting the daemon;
 * - unloading the capsule stops its server and removes its tools.
 *
 * Skipped (with the reason printed) only when the machine cannot make the namespace sandbox.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import { type CallToolResult, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { userCapsulesDir, writeInstallRecord } from "../kernel/capsule/mod.ts";
import { bootDaemon, type Daemon, DaemonClient } from "../kernel/daemon/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import type { McpEngine } from "../kernel/mcp/mod.ts";
import { sandboxStatus } from "../kernel/sandbox/mod.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));
const FS_SERVER = fileURLToPath(
  new URL("../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", import.meta.url),
);
const status = await sandboxStatus();

async function cli(
  root: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `--config=${CONFIG}`, MAIN, ...args],
    env: { ASTRID_HOME: root },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

Deno.test({
  name: "McpEngine on a daemon: capsule and operator servers, served, listed and reloaded",
  ignore: !status.available,
  async fn(t) {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-mcp-daemon-" }));
    const home = await AstridHome.open(root);
    const workspace = join(root, "project");
    await Deno.mkdir(join(workspace, ".astrid"), { recursive: true });
    await Deno.writeTextFile(join(workspace, "README.md"), "# project\n");
    await Deno.writeTextFile(
      join(home.etc, "servers.toml"),
      `[servers.ops]\ncommand = "node"\nargs = ["${FS_SERVER}", "\${workspace}"]\nfs_read = ["*"]\n`,
    );
    const dir = join(userCapsulesDir(home, principalId("default")), "files");
    await Deno.mkdir(dir, { recursive: true });
    await writeInstallRecord(dir, {
      manifestText: `[package]
name = "files"
version = "1.0.0"

[capabilities]
host_process = ["node"]
fs_read = ["*"]
fs_write = ["*"]

[[mcp_server]]
name = "files"
command = "node"
args = ["${FS_SERVER}", "\${workspace}"]
`,
      meta: {
        name: "files",
        version: "1.0.0",
        wasm_hash: null,
        source: "test",
        installed_at: new Date().toISOString(),
      },
    });
    let daemon: Daemon | undefined;
    let engine: McpEngine | undefined;
    let client: Client | undefined;
    try {
      daemon = await bootDaemon({ home: root, env: { get: () => undefined }, echoLog: false });
      const d = daemon;
      // The daemon opens the engine at boot (kernel/daemon/_boot.ts) on its own pipeline.
      assert.ok(d.mcp !== undefined, "the daemon runs an MCP engine");
      engine = d.mcp;
      await t.step(
        "the operator's and the capsule's servers are both running their catalogs",
        () => {
          const servers = engine!.servers();
          assert.deepEqual(servers.map((s) => [s.name, s.state, s.origin]), [
            ["ops", "ready", `${join(home.etc, "servers.toml")}:1`],
            ["files", "ready", 'capsule "files"'],
          ]);
          assert.ok(servers.every((s) => s.sandboxed));
        },
      );
      await t.step("astrid mcp servers lists them through the daemon", async () => {
        const r = await cli(root, "mcp", "servers", "--json");
        assert.equal(r.code, 0, r.err);
        const rows = JSON.parse(r.out) as { name: string; tools: string[] }[];
        assert.deepEqual(rows.map((x) => x.name), ["ops", "files"]);
        assert.ok(rows[1].tools.includes("files__write_file"));
      });
      await t.step("an MCP client of astrid mcp serve calls them like any tool", async () => {
        client = new Client({ name: "t", version: "1" }, {
          capabilities: { elicitation: { form: {} } },
        });
        const asked: string[] = [];
        client.setRequestHandler(ElicitRequestSchema, (req) => {
          asked.push(req.params.message);
          return { action: "accept", content: { decision: "allow_once" } };
        });
        await client.connect(
          new StdioClientTransport({
            command: Deno.execPath(),
            args: ["run", "-A", "--quiet", `--config=${CONFIG}`, MAIN, "mcp", "serve"],
            env: { ASTRID_HOME: root, PATH: Deno.env.get("PATH") ?? "" },
            cwd: workspace,
            stderr: "ignore",
          }),
        );
        const { tools } = await client.listTools();
        const names = tools.map((x) => x.name);
        assert.ok(names.includes("files__read_text_file"));
        assert.ok(names.includes("ops__list_directory"));
        const r = await client.callTool({
          name: "files__read_text_file",
          arguments: { path: join(workspace, "README.md") },
        }) as CallToolResult;
        assert.equal(r.isError, undefined, JSON.stringify(r.content));
        assert.deepEqual(r.content, [{ type: "text", text: "# project\n" }]);
        assert.equal(asked.length, 1, "a native tool is asked in guided mode");
        assert.match(asked[0], /call tool files\/read_text_file/);
      });
      await t.step(
        "astrid mcp reload restarts one server without restarting the daemon",
        async () => {
          const before = engine!.servers().find((s) => s.name === "files")!;
          assert.equal(before.instances.filter((i) => i.state === "running").length, 1);
          const r = await cli(root, "mcp", "reload", "files");
          assert.equal(r.code, 0, r.err);
          assert.match(r.out, /files: ready/);
          const after = engine!.servers().find((s) => s.name === "files")!;
          assert.equal(after.instances.length, 0, "instances stopped");
          assert.equal(after.state, "ready");
          const unknown = await cli(root, "mcp", "reload", "nope");
          assert.equal(unknown.code, 1);
          assert.match(unknown.err, /No MCP server "nope" is declared/);
        },
      );
      await t.step("unloading the capsule removes its server and tools", async () => {
        const token = (await Deno.readTextFile(d.paths.token)).trim();
        const admin = await DaemonClient.connect(d.paths.socket, { token, client: "test" });
        try {
          await Deno.remove(dir, { recursive: true });
          await admin.call("management", { request: "ReloadCapsules" });
        } finally {
          await admin.close();
        }
        await engine!.syncCapsules();
        assert.deepEqual(engine!.servers().map((s) => s.name), ["ops"]);
        assert.ok(!engine!.host.tools().some((x) => x.server === "files"));
      });
    } finally {
      await client?.close().catch(() => {});
      await daemon?.shutdown("test done");
      await Deno.remove(root, { recursive: true });
    }
  },
});

if (!status.available) console.error(`mcp_engine_daemon_test skipped: ${status.reason}`);
