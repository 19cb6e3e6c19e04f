import assert from "node:assert/strict";
import { join } from "node:path";
import { McpCode, McpError } from "./errors.ts";
import { DEFAULT_MCP_SETTINGS, loadServersToml, parseServersToml } from "./servers_toml.ts";

function caught(fn: () => unknown): McpError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof McpError);
    return err;
  }
  throw new Error("expected a throw");
}

const FILE = "/home/op/.astrid/etc/servers.toml";
const HASH = "blake3:" + "a".repeat(64);

Deno.test("parseServersToml()", async (t) => {
  await t.step("reads settings and servers with defaults filled", () => {
    const r = parseServersToml(
      `[settings]
allow_unsandboxed = true
idle_timeout_secs = 60

[servers.filesystem]
command = "node"
args = ["\${dir}/fs/index.js", "\${workspace}"]
hash = "${HASH}"
env = { NODE_ENV = "production" }
description = "Files"
fs_read = ["*"]
fs_write = ["workspace://src"]

[servers.fetch]
command = "/opt/bin/mcp-fetch"
`,
      FILE,
    );
    assert.deepEqual(r.settings, {
      allowUnsandboxed: true,
      idleTimeoutSecs: 60,
      callTimeoutSecs: DEFAULT_MCP_SETTINGS.callTimeoutSecs,
    });
    assert.equal(r.servers.length, 2);
    const [fs, fetch] = r.servers;
    assert.equal(fs.name, "filesystem");
    assert.deepEqual(fs.args, ["${dir}/fs/index.js", "${workspace}"]);
    assert.equal(fs.hash, HASH);
    assert.deepEqual(fs.env, { NODE_ENV: "production" });
    assert.deepEqual(fs.fsWrite, ["workspace://src"]);
    assert.deepEqual(fs.origin, { kind: "operator", file: FILE, line: 5 });
    assert.equal(fs.dir, "/home/op/.astrid/etc");
    assert.equal(fetch.command, "/opt/bin/mcp-fetch");
    assert.deepEqual(fetch.args, []);
    assert.deepEqual(fetch.fsRead, []);
  });

  await t.step("an empty file is no servers and the defaults", () => {
    assert.deepEqual(parseServersToml("", FILE), { settings: DEFAULT_MCP_SETTINGS, servers: [] });
  });

  await t.step("reports a syntax error with its line", () => {
    const err = caught(() => parseServersToml('[servers.x]\ncommand = "a\n', FILE));
    assert.equal(err.code, McpCode.MCP_CONFIG_INVALID);
    assert.match(err.message, /servers\.toml:2: not valid TOML/);
  });

  await t.step("reports every problem with file, line, field and a fix", () => {
    const err = caught(() =>
      parseServersToml(
        `[settings]
idle_timeout_secs = -1

[servers.Bad__name]
command = "node"

[servers.ok]
command = "../x"
hash = "deadbeef"
fs_write = ["/etc"]
colour = "blue"
`,
        FILE,
      )
    );
    assert.equal(err.code, McpCode.MCP_CONFIG_INVALID);
    const text = err.message;
    assert.match(text, /6 problems/);
    assert.match(
      text,
      /servers\.toml:2: settings\.idle_timeout_secs: expected whole seconds from 0 to 86400, got -1/,
    );
    assert.match(text, /servers\.toml:4: servers\.Bad__name: invalid server name "Bad__name"/);
    assert.match(text, /servers\.toml:8: servers\.ok\.command: "\.\.\/x" is not a program name/);
    assert.match(
      text,
      /servers\.toml:9: servers\.ok\.hash: "deadbeef" is not a BLAKE3 content address/,
    );
    assert.match(text, /servers\.toml:10: servers\.ok\.fs_write: "\/etc" is not a VFS path/);
    assert.match(text, /servers\.toml:11: servers\.ok\.colour: unknown key "colour"/);
    assert.equal(err.data?.line, 2);
    assert.equal(err.data?.field, "settings.idle_timeout_secs");
  });

  await t.step("requires a command", () => {
    assert.throws(
      () => parseServersToml("[servers.x]\nargs = []\n", FILE),
      /servers\.toml:1: servers\.x\.command: add command = "node"/,
    );
  });
});

Deno.test("loadServersToml() treats a missing file as no servers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await loadServersToml(join(dir, "servers.toml"));
    assert.deepEqual(r.servers, []);
    await Deno.writeTextFile(join(dir, "servers.toml"), '[servers.a]\ncommand = "node"\n');
    assert.equal((await loadServersToml(join(dir, "servers.toml"))).servers[0].name, "a");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
