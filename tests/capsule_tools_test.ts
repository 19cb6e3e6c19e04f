/**
 * The astralis tool capsules end to end: `capsules/tools-fs`, `capsules/tools-shell` and
 * `capsules/tools-http` are built from source with the SDK's build (cached), installed into a
 * temp `ASTRID_HOME`, and called over the real kernel's bus (`tool.v1.execute.<name>` with a
 * `request_id`, answered on `tool.v1.execute.<name>.result`), through the real host ABI, manifest
 * gate, security pipeline, VFS overlay and native sandbox:
 *
 * - read/write/edit round trip: the writes land in the session overlay's diff, not in the
 *   workspace; edit errors on a missing or ambiguous `old`; list_dir, glob and search;
 * - run_shell: a command's write lands in the overlay; `sudo true` is denied by the policy;
 * - http_fetch: a loopback server the test manifest allows answers; other hosts are denied;
 * - `tool.v1.request.describe` lists every tool with its input schema.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { JsonValue } from "../kernel/events/mod.ts";
import {
  type CapsuleHarness,
  messageJson,
  testBuildCacheDir,
  testCapsule,
} from "../sdk/testing/mod.ts";

const CAPSULES = fileURLToPath(new URL("../capsules/", import.meta.url));
const TOOLS_FS = join(CAPSULES, "tools-fs");
const TOOLS_SHELL = join(CAPSULES, "tools-shell");
const TOOLS_HTTP = join(CAPSULES, "tools-http");
const BUILD = { cacheDir: testBuildCacheDir() };
const SESSION = "s1";
const WORKSPACE_ID = "w1";

/** A tool result payload as published on `tool.v1.execute.<name>.result`. */
interface ToolResult {
  request_id: string;
  tool: string;
  capsule: string;
  is_error: boolean;
  content: string;
  error?: { code: string; message: string };
  session?: string;
  workspace_id?: string;
}

let counter = 0;

/** Publishes `tool.v1.execute.<name>` in the test session and workspace; resolves the result. */
async function call(h: CapsuleHarness, name: string, args: JsonValue): Promise<ToolResult> {
  const requestId = `r-${++counter}`;
  const msg = await h.waitFor(
    `tool.v1.execute.${name}.result`,
    () =>
      h.publish(`tool.v1.execute.${name}`, {
        arguments: args,
        session: SESSION,
        workspace_id: WORKSPACE_ID,
      }, { requestId }),
    { accept: (m) => m.request_id === requestId },
  );
  const result = messageJson<ToolResult>(msg);
  assert.equal(result.request_id, requestId);
  assert.equal(result.tool, name);
  return result;
}

/** The content of a successful call; fails the test with the error otherwise. */
async function ok(h: CapsuleHarness, name: string, args: JsonValue): Promise<string> {
  const r = await call(h, name, args);
  assert.equal(r.is_error, false, `${name} failed: ${r.content}`);
  return r.content;
}

/** Every `tool.v1.response.describe.<capsule>` answer to one describe request, by capsule. */
async function describe(
  h: CapsuleHarness,
  capsules: readonly string[],
): Promise<Map<string, { name: string; input_schema: Record<string, JsonValue> }[]>> {
  const requestId = `d-${++counter}`;
  const seen = new Map<string, { name: string; input_schema: Record<string, JsonValue> }[]>();
  await h.collect(
    "tool.v1.response.describe.*",
    () => h.publish("tool.v1.request.describe", {}, { requestId }),
    {
      until: (m) => {
        if (m.request_id !== requestId) return false;
        const v = messageJson<{ capsule: string; tools: [] }>(m);
        seen.set(v.capsule, v.tools);
        return capsules.every((c) => seen.has(c));
      },
    },
  );
  return seen;
}

/** A workspace outside the temp home, bound as `w1` so the session overlay is over it. */
async function bindWorkspace(h: CapsuleHarness, files: Record<string, string>): Promise<string> {
  const ws = await Deno.realPath(await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-ws-" }));
  await Deno.mkdir(join(ws, ".astrid"), { recursive: true });
  await Deno.writeTextFile(join(ws, ".astrid", "workspace-id"), `${WORKSPACE_ID}\n`);
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(ws, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(ws, path), text);
  }
  const host = h.daemon.capsules as unknown as {
    workspaces: { remember(id: string, root: string): Promise<boolean> };
  };
  await host.workspaces.remember(WORKSPACE_ID, ws);
  h.daemon.overlays.remember(WORKSPACE_ID, ws);
  return ws;
}

/** The overlay's changed paths (added/modified/deleted) for the test session. */
async function diffPaths(h: CapsuleHarness, ws: string): Promise<string[]> {
  const changes = await h.daemon.overlays.diff({
    principal: "default",
    session: SESSION,
    workspaceId: WORKSPACE_ID,
    root: ws,
  });
  return changes.map((c) => `${c.change} ${c.path}`).sort();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("tools-fs and tools-shell work in the session overlay over the bus", async (t) => {
  await using h = await testCapsule(TOOLS_FS, {
    with: [TOOLS_SHELL],
    build: BUILD,
    mode: "autonomous",
  });
  const ws = await bindWorkspace(h, {
    "notes.md": "line one\nline two\nline three\n",
    "src/a.ts": "export const a = 1;\nexport const b = a;\n",
    "src/lib/b.ts": "import { a } from '../a.ts';\n",
    "docs/readme.txt": "no code here\n",
    ".env": "TOKEN=secret\n",
    "blob.bin": "a\0b",
  });
  try {
    await t.step("read_file reads a workspace file, and a window of its lines", async () => {
      assert.equal(
        await ok(h, "read_file", { path: "notes.md" }),
        "line one\nline two\nline three\n",
      );
      const window = await ok(h, "read_file", { path: "./notes.md", offset: 1, limit: 1 });
      assert.match(
        window,
        /^line two\n\[lines 1-1 of 4 \(counted from 0\); pass offset to read on\]$/,
      );
    });

    await t.step("read_file of a missing file is an error result naming it", async () => {
      const r = await call(h, "read_file", { path: "missing.md" });
      assert.equal(r.is_error, true);
      assert.equal(r.error?.code, "NOT_FOUND");
      assert.match(r.content, /Cannot read "missing\.md"/);
    });

    await t.step("a path leaving the workspace is denied", async () => {
      for (const path of ["../outside.txt", "/etc/hostname"]) {
        const r = await call(h, "read_file", { path });
        assert.equal(r.is_error, true, r.content);
        assert.equal(r.error?.code, "DENIED");
      }
      const w = await call(h, "write_file", { path: "../escape.txt", content: "x" });
      assert.equal(w.error?.code, "DENIED");
    });

    await t.step("the policy blocks reading .env; binary files are refused", async () => {
      const env = await call(h, "read_file", { path: ".env" });
      assert.equal(env.is_error, true, env.content);
      assert.equal(env.error?.code, "DENIED");
      assert.match(env.content, /^Cannot read "\.env": /);
      const bin = await call(h, "read_file", { path: "blob.bin" });
      assert.equal(bin.is_error, true, bin.content);
      assert.equal(bin.error?.code, "INVALID_ARGUMENT");
      assert.match(bin.content, /"blob\.bin" is binary/);
    });

    await t.step("write_file lands in the overlay diff, not in the workspace", async () => {
      const text = "# Summary\n\nThe notes were read.\n";
      assert.equal(
        await ok(h, "write_file", { path: "out/summary.md", content: text }),
        `Wrote ${text.length} bytes to out/summary.md`,
      );
      assert.equal(await ok(h, "read_file", { path: "out/summary.md" }), text);
      assert.equal(await exists(join(ws, "out", "summary.md")), false);
      assert.deepEqual(await diffPaths(h, ws), ["added out", "added out/summary.md"]);
    });

    await t.step("edit_file replaces exactly one occurrence", async () => {
      assert.equal(
        await ok(h, "edit_file", { path: "notes.md", old: "line two", new: "line 2" }),
        "Replaced 1 occurrence in notes.md",
      );
      assert.equal(
        await ok(h, "read_file", { path: "notes.md" }),
        "line one\nline 2\nline three\n",
      );
      assert.equal(
        await Deno.readTextFile(join(ws, "notes.md")),
        "line one\nline two\nline three\n",
      );
      assert.ok((await diffPaths(h, ws)).includes("modified notes.md"));
    });

    await t.step("edit_file refuses an old text that is missing or ambiguous", async () => {
      const missing = await call(h, "edit_file", { path: "notes.md", old: "line nine", new: "x" });
      assert.equal(missing.is_error, true);
      assert.equal(missing.error?.code, "NOT_FOUND");
      assert.match(missing.content, /Text to replace not found in "notes\.md"/);
      const twice = await call(h, "edit_file", { path: "notes.md", old: "line ", new: "row " });
      assert.equal(twice.is_error, true);
      assert.equal(twice.error?.code, "CONFLICT");
      assert.match(twice.content, /occurs 3 times in "notes\.md".*replace_all/);
      assert.equal(
        await ok(h, "edit_file", {
          path: "notes.md",
          old: "line ",
          new: "row ",
          replace_all: true,
        }),
        "Replaced 3 occurrences in notes.md",
      );
      assert.equal(await ok(h, "read_file", { path: "notes.md" }), "row one\nrow 2\nrow three\n");
    });

    await t.step("list_dir lists the overlay view, directories with a slash", async () => {
      const listing = (await ok(h, "list_dir", { path: "" })).split("\n");
      for (const name of [".astrid/", "docs/", "notes.md", "out/", "src/"]) {
        assert.ok(listing.includes(name), `${name} missing from ${listing.join(", ")}`);
      }
      assert.equal(await ok(h, "list_dir", { path: "src" }), "a.ts\nlib/");
    });

    await t.step("glob matches names, and paths with ** across directories", async () => {
      assert.deepEqual((await ok(h, "glob", { pattern: "*.ts" })).split("\n").sort(), [
        "src/a.ts",
        "src/lib/b.ts",
      ]);
      assert.equal(await ok(h, "glob", { pattern: "src/*.ts" }), "src/a.ts");
      assert.equal(await ok(h, "glob", { pattern: "**/b.ts" }), "src/lib/b.ts");
      assert.equal(await ok(h, "glob", { pattern: "*.md", path: "out" }), "out/summary.md");
      assert.equal(await ok(h, "glob", { pattern: "*.rs" }), "No files match *.rs");
      const capped = await ok(h, "glob", { pattern: "**", max_results: 2 });
      assert.match(capped, /\n\[stopped after 2 results\]$/);
    });

    await t.step("search finds a literal substring with path and line number", async () => {
      assert.deepEqual((await ok(h, "search", { pattern: "const a" })).split("\n"), [
        "src/a.ts:1: export const a = 1;",
      ]);
      assert.deepEqual(
        (await ok(h, "search", { pattern: "a", glob: "*.ts", max_results: 1 })).split(
          "\n",
        )[1],
        "[stopped after 1 matches]",
      );
      assert.equal(await ok(h, "search", { pattern: "zebra" }), "No matches for zebra");
    });

    await t.step(
      "run_shell runs sh -c in the overlay: it sees writes, its own land there",
      async () => {
        const out = JSON.parse(
          await ok(h, "run_shell", {
            command: "cat out/summary.md | head -1; echo made > shell.txt",
          }),
        );
        assert.deepEqual(out, {
          exit_code: 0,
          signal: "",
          stdout: "# Summary\n",
          stderr: "",
          timed_out: false,
        });
        assert.equal(await exists(join(ws, "shell.txt")), false);
        assert.ok((await diffPaths(h, ws)).includes("added shell.txt"));
        assert.equal(await ok(h, "read_file", { path: "shell.txt" }), "made\n");
      },
    );

    await t.step("run_shell reports a failing command's exit code, stderr and cwd", async () => {
      const out = JSON.parse(
        await ok(h, "run_shell", { command: "pwd; echo oops >&2; exit 3", cwd: "src/lib" }),
      );
      assert.equal(out.exit_code, 3);
      assert.equal(out.stdout, join(ws, "src", "lib") + "\n");
      assert.equal(out.stderr, "oops\n");
    });

    await t.step("run_shell: sudo is denied by the policy", async () => {
      const r = await call(h, "run_shell", { command: "sudo true" });
      assert.equal(r.is_error, true, r.content);
      assert.equal(r.error?.code, "DENIED");
      assert.match(r.content, /polic/i);
      assert.match(r.content, /sudo/);
    });

    await t.step("run_shell kills a command at its timeout_ms", async () => {
      const out = JSON.parse(await ok(h, "run_shell", { command: "sleep 30", timeout_ms: 300 }));
      assert.equal(out.timed_out, true);
      assert.notEqual(out.exit_code, 0);
    });

    await t.step("tool.v1.request.describe lists every tool with its input schema", async () => {
      const tools = await describe(h, ["tools-fs", "tools-shell"]);
      const fsTools = tools.get("tools-fs")!;
      assert.deepEqual(fsTools.map((x) => x.name).sort(), [
        "edit_file",
        "glob",
        "list_dir",
        "read_file",
        "search",
        "write_file",
      ]);
      const schema = (name: string) => fsTools.find((x) => x.name === name)!.input_schema;
      assert.deepEqual(schema("read_file").required, ["path"]);
      assert.deepEqual(Object.keys(schema("read_file").properties as object).sort(), [
        "limit",
        "offset",
        "path",
      ]);
      assert.deepEqual(schema("write_file").required, ["path", "content"]);
      assert.deepEqual((schema("edit_file").required as string[]).sort(), ["new", "old", "path"]);
      assert.deepEqual(Object.keys(schema("edit_file").properties as object).sort(), [
        "new",
        "old",
        "path",
        "replace_all",
      ]);
      assert.deepEqual(schema("glob").required, ["pattern"]);
      assert.deepEqual(schema("search").required, ["pattern"]);
      const shell = tools.get("tools-shell")!;
      assert.deepEqual(shell.map((x) => x.name), ["run_shell"]);
      assert.deepEqual(shell[0].input_schema.required, ["command"]);
      assert.deepEqual(Object.keys(shell[0].input_schema.properties as object).sort(), [
        "command",
        "cwd",
        "timeout_ms",
      ]);
    });
  } finally {
    await Deno.remove(ws, { recursive: true });
  }
});

Deno.test("tools-http fetches from hosts the net allow list names, and only those", async (t) => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = req.method === "POST" ? await req.text() : "";
    return new Response(`${req.method} ${new URL(req.url).pathname} ${body}`.trim(), {
      status: 201,
      headers: { "x-echo": req.headers.get("x-test") ?? "" },
    });
  });
  const port = server.addr.port;
  // The operator's edit of the allow list, made on a copy of the capsule.
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "astrid-tools-http-" });
  try {
    await Deno.mkdir(join(dir, "assembly"));
    await Deno.copyFile(
      join(TOOLS_HTTP, "assembly", "index.ts"),
      join(dir, "assembly", "index.ts"),
    );
    const manifest = await Deno.readTextFile(join(TOOLS_HTTP, "Capsule.toml"));
    assert.match(manifest, /^net = \["example\.com:443"\]$/m);
    await Deno.writeTextFile(
      join(dir, "Capsule.toml"),
      manifest.replace(/^net = .*$/m, `net = ["127.0.0.1:${port}"]`),
    );
    await using h = await testCapsule(dir, { build: BUILD, mode: "autonomous" });

    await t.step("http_fetch reaches an allowed loopback host:port", async () => {
      const out = JSON.parse(
        await ok(h, "http_fetch", {
          url: `http://127.0.0.1:${port}/hello`,
          method: "post",
          headers: { "x-test": "yes", "content-type": "text/plain" },
          body: "ping",
        }),
      );
      assert.equal(out.status, 201);
      assert.equal(out.reason, "Created");
      assert.equal(out.body, "POST /hello ping");
      assert.equal(out.headers["x-echo"], "yes");
      assert.equal(out.truncated, false);
    });

    await t.step("http_fetch is denied for a host or port the list does not name", async () => {
      for (const url of [`http://127.0.0.1:${port + 1}/`, "https://example.org/"]) {
        const r = await call(h, "http_fetch", { url });
        assert.equal(r.is_error, true, r.content);
        assert.equal(r.error?.code, "DENIED");
        assert.match(r.content, /net/);
      }
    });

    await t.step("http_fetch refuses a URL that is not http(s)", async () => {
      const r = await call(h, "http_fetch", { url: "file:///etc/passwd" });
      assert.equal(r.is_error, true);
      assert.equal(r.error?.code, "INVALID_ARGUMENT");
    });

    await t.step("tool.v1.request.describe lists http_fetch with its input schema", async () => {
      const tools = await describe(h, ["tools-http"]);
      const [fetch] = tools.get("tools-http")!;
      assert.equal(fetch.name, "http_fetch");
      assert.deepEqual(fetch.input_schema.required, ["url"]);
      assert.deepEqual(Object.keys(fetch.input_schema.properties as object).sort(), [
        "body",
        "headers",
        "method",
        "url",
      ]);
    });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
