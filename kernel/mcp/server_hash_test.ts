import assert from "node:assert/strict";
import { join } from "node:path";
import { blake3Hex } from "../crypto/mod.ts";
import { McpCode, McpError } from "./errors.ts";
import { checkServerHash, hashFile, hashTarget } from "./server_hash.ts";
import type { McpServerSpec } from "./server_spec.ts";

function spec(dir: string, overrides: Partial<McpServerSpec>): McpServerSpec {
  return {
    name: "s",
    command: "node",
    args: [],
    env: {},
    origin: { kind: "operator", file: join(dir, "servers.toml") },
    dir,
    fsRead: [],
    fsWrite: [],
    network: false,
    ...overrides,
  };
}

async function rejects(p: Promise<unknown>, code: string): Promise<McpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof McpError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  throw new Error(`expected ${code}`);
}

Deno.test("hashTarget() and checkServerHash() pin what decides a server's behaviour", async (t) => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  const script = join(dir, "server.js");
  await Deno.writeTextFile(script, "console.log('hi')\n");
  const tool = join(bin, "mcp-tool");
  await Deno.writeTextFile(tool, "#!/bin/sh\necho hi\n");
  await Deno.chmod(tool, 0o755);
  const scriptHash = `blake3:${blake3Hex(await Deno.readFile(script))}`;
  const toolHash = `blake3:${blake3Hex(await Deno.readFile(tool))}`;
  try {
    await t.step(
      "hashTarget() is the script of an interpreter, relative to the spec's dir",
      async () => {
        assert.deepEqual(
          await hashTarget(spec(dir, { args: ["--no-warnings", "server.js", "x"] })),
          {
            kind: "script",
            file: script,
          },
        );
        assert.deepEqual(
          await hashTarget(spec(dir, { command: "deno", args: ["run", "-A", script] })),
          { kind: "script", file: script },
        );
        assert.deepEqual(
          await hashTarget(spec(dir, { command: "python3.12", args: ["${dir}/server.js"] })),
          { kind: "script", file: script },
        );
      },
    );
    await t.step("hashTarget() is the program itself otherwise, found on PATH", async () => {
      assert.deepEqual(await hashTarget(spec(dir, { command: "mcp-tool" }), { path: bin }), {
        kind: "program",
        file: tool,
      });
      assert.deepEqual(await hashTarget(spec(dir, { command: tool })), {
        kind: "program",
        file: tool,
      });
    });
    await t.step("hashTarget() pins nothing for launchers and python -m", async () => {
      assert.equal(
        (await hashTarget(spec(dir, { command: "npx", args: ["-y", "pkg"] }))).kind,
        "none",
      );
      assert.equal(
        (await hashTarget(spec(dir, { command: "python3", args: ["-m", "pkg"] }))).kind,
        "none",
      );
    });
    await t.step("hashTarget() refuses a missing script or program", async () => {
      const e = await rejects(
        hashTarget(spec(dir, { args: ["missing.js"] })),
        McpCode.MCP_HASH_TARGET_MISSING,
      );
      assert.match(e.message, /its script "missing\.js" is not a file/);
      await rejects(
        hashTarget(spec(dir, { command: "no-such-prog" }), { path: bin }),
        McpCode.MCP_HASH_TARGET_MISSING,
      );
    });
    await t.step("checkServerHash() accepts the pinned hash", async () => {
      const r = await checkServerHash(spec(dir, { args: ["server.js"], hash: scriptHash }));
      assert.equal(r.pinned, true);
      assert.equal(
        (await checkServerHash(spec(dir, { command: tool, hash: toolHash }))).pinned,
        true,
      );
      assert.equal((await checkServerHash(spec(dir, { args: ["server.js"] }))).pinned, false);
    });
    await t.step("checkServerHash() refuses another hash, naming both", async () => {
      await Deno.writeTextFile(script, "console.log('evil')\n");
      const e = await rejects(
        checkServerHash(spec(dir, { args: ["server.js"], hash: scriptHash })),
        McpCode.MCP_HASH_MISMATCH,
      );
      assert.equal(e.data?.expected, scriptHash);
      assert.equal(e.data?.actual, await hashFile(script));
      assert.match(
        e.message,
        /Refused to start MCP server "s": script ".*server\.js" has hash "blake3:/,
      );
    });
    await t.step("checkServerHash() refuses a hash on a launcher", async () => {
      await rejects(
        checkServerHash(spec(dir, { command: "uvx", args: ["x"], hash: toolHash })),
        McpCode.MCP_HASH_UNPINNABLE,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
