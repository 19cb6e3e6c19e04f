import assert from "node:assert/strict";
import { CapsuleCode, ManifestError } from "./errors.ts";
import { handlerBindings, manifestAcl } from "./manifest_acl.ts";
import { parseManifest } from "./manifest_parser.ts";

const FILE = "caps/demo/Capsule.toml";

function problems(text: string): ManifestError {
  try {
    parseManifest(text, { file: FILE });
  } catch (err) {
    if (err instanceof ManifestError) return err;
    throw err;
  }
  throw new Error("expected a ManifestError");
}

Deno.test("parseManifest() fills defaults for a minimal manifest", () => {
  const m = parseManifest(`[package]\nname = "demo"\nversion = "0.1.0"\n`, { file: FILE });
  assert.equal(m.file, FILE);
  assert.equal(m.wasm, undefined);
  assert.deepEqual(m.capabilities, {
    fs_read: [],
    fs_write: [],
    net: [],
    net_bind: [],
    host_process: [],
    allow_persistent: false,
    kv: false,
    http: false,
    uplink: false,
    approval: false,
    allow_prompt_injection: false,
  });
  assert.deepEqual([m.imports, m.exports, m.publish, m.subscribe, m.tool, m.cron], [
    [],
    [],
    [],
    [],
    [],
    [],
  ]);
  assert.deepEqual(m.static, { context_files: [] });
});

Deno.test("parseManifest() accepts the flat and nested [imports]/[exports] forms alike", async (t) => {
  const base = `[package]\nname = "demo"\nversion = "0.1.0"\n`;
  await t.step("same result", () => {
    const flat = parseManifest(
      base +
        `[imports]\n"astrid:llm" = "^1.0"\n"astrid:kv" = { version = "^1.0", optional = true }\n[exports]\n"astrid:ctx" = "1.0.0"\n`,
      { file: FILE },
    );
    const nested = parseManifest(
      base +
        `[imports.astrid]\nllm = "^1.0"\nkv = { version = "^1.0", optional = true }\n[exports.astrid]\nctx = { version = "1.0.0" }\n`,
      { file: FILE },
    );
    assert.deepEqual(flat.imports, nested.imports);
    assert.deepEqual(flat.exports, nested.exports);
    assert.deepEqual(flat.imports.map((i) => [i.id, i.optional]), [["astrid:kv", true], [
      "astrid:llm",
      false,
    ]]);
  });
  await t.step("the same interface in both forms is declared twice", () => {
    const err = problems(base + `[imports]\n"astrid:llm" = "^1"\n[imports.astrid]\nllm = "^1"\n`);
    assert.match(err.message, /"astrid:llm" is declared twice/);
  });
  await t.step("typed prefixes take dotted bodies with * segments", () => {
    const m = parseManifest(base + `[imports]\n"topic:llm.v1.stream.*" = "*"\n"tool:*" = "*"\n`, {
      file: FILE,
    });
    assert.deepEqual(m.imports.map((i) => i.id), ["tool:*", "topic:llm.v1.stream.*"]);
  });
});

Deno.test("parseManifest() collects every problem with file, line, field and fix", () => {
  const err = problems(`[package]
name = "Demo"
version = "1"

[capabilities]
fs_raed = ["workspace://"]
net = ["api.example.com"]

[[tool]]
name = "ok"
description = "fine"

[[tool]]
name = "ok"
description = "again"
`);
  assert.equal(err.code, CapsuleCode.MANIFEST_INVALID);
  assert.equal(err.data?.file, FILE);
  const lines = err.issues.map((i) => `${i.line} ${i.field}`);
  assert.deepEqual(lines, [
    "2 package.name",
    "3 package.version",
    "6 capabilities.fs_raed",
    "7 capabilities.net[0]",
    "9 tool[0]",
    "13 tool[1]",
    "14 tool[1].name",
  ]);
  assert.match(err.message, /^Invalid capsule manifest "caps\/demo\/Capsule.toml": 7 problems\n/);
  assert.match(
    err.message,
    /caps\/demo\/Capsule.toml:6: capabilities.fs_raed: unknown key "fs_raed" in \[capabilities\]; did you mean "fs_read"\?/,
  );
  assert.match(
    err.message,
    /:14: tool\[1\].name: "ok" is declared twice in \[\[tool\]\]; rename or remove one/,
  );
  assert.match(
    err.message,
    /:9: tool\[0\]: a tool needs a WebAssembly module to run it; add a \[wasm\] table/,
  );
  assert.equal(err.issues[2].column, 1);
  assert.equal(err.issues[2].fix, 'did you mean "fs_read"?');
});

Deno.test("parseManifest() reports TOML syntax errors with line and column", () => {
  const err = problems(`[package]\nname = "demo"\nversion = 0.1.0\n`);
  assert.equal(err.issues.length, 1);
  assert.equal(err.issues[0].line, 3);
  assert.ok(err.issues[0].column !== undefined);
  assert.match(err.message, /Capsule.toml:3: \(syntax\): invalid TOML/);
});

Deno.test("manifestAcl() and handlerBindings() include what [[tool]] implies", () => {
  const m = parseManifest(
    `[package]
name = "demo"
version = "0.1.0"
[wasm]
[publish]
"demo.v1.event" = { wit = "opaque" }
[subscribe]
"user.v1.prompt" = { wit = "opaque", handler = "on_prompt", priority = 10 }
"astrid.v1.capsules_loaded" = { wit = "opaque" }
[[tool]]
name = "search"
description = "Searches"
`,
    { file: FILE },
  );
  assert.deepEqual(manifestAcl(m), {
    publish: ["demo.v1.event", "tool.v1.execute.search.result", "tool.v1.response.describe.*"],
    subscribe: [
      "user.v1.prompt",
      "astrid.v1.capsules_loaded",
      "tool.v1.execute.search",
      "tool.v1.request.describe",
    ],
  });
  assert.deepEqual(handlerBindings(m), [
    { topic: "user.v1.prompt", handler: "on_prompt", priority: 10, from: "subscribe" },
    {
      topic: "tool.v1.execute.search",
      handler: "tool_search",
      priority: 100,
      from: "tool",
      tool: "search",
    },
  ]);
});
