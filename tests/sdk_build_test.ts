/**
 * `astrid build` end to end: what goes into the archive (manifest with derived schemas, the
 * module, static files, HASHES), that it reads back with `readArchive`, the checks against the
 * manifest (a declared tool without an implementation and the reverse, both named), the import
 * check, pinned hashes, prebuilt modules from other languages (WAT here), static-only capsules,
 * the cache, and the CLI's output and exit codes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import wabtInit from "wabt";
import { parseManifest, readArchive } from "../kernel/capsule/mod.ts";
import { blake3Hex } from "../kernel/crypto/mod.ts";
import { hasCode } from "../kernel/errors.ts";
import { runCli } from "../cli/mod.ts";
import { buildCapsule } from "../sdk/build/mod.ts";
import { testBuildCacheDir, testCapsule } from "../sdk/testing/mod.ts";

const wabt = await wabtInit();

function wat(text: string): Uint8Array {
  const m = wabt.parseWat("t.wat", text);
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}

async function capsule(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "astrid-build-" });
  for (const [path, data] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    if (typeof data === "string") await Deno.writeTextFile(join(dir, path), data);
    else await Deno.writeFile(join(dir, path), data);
  }
  return dir;
}

const cacheDir = testBuildCacheDir();

const HELLO_TOML = `[package]
name = "hi"
version = "1.2.3"

[wasm]

[[tool]]
name = "hello"
description = "Says hello"
`;

const HELLO_TS = `@json class Args { /** Who. */ who!: string; }
@tool function hello(args: Args): string { return "hello " + args.who; }
`;

Deno.test("buildCapsule() packs a verified archive with the derived schema", async (t) => {
  const dir = await capsule({
    "Capsule.toml": HELLO_TOML,
    "assembly/index.ts": HELLO_TS,
    "static/notes/a.md": "# notes\n",
  });
  try {
    const first = await buildCapsule(dir, { cacheDir });
    const archive = await readArchive(await Deno.readFile(join(dir, "dist", "hi.capsule")));
    await t.step("the archive holds Capsule.toml, hi.wasm and static/…, and reads back", () => {
      assert.deepEqual(archive.members.map((m) => m.path), [
        "Capsule.toml",
        "hi.wasm",
        "static/notes/a.md",
      ]);
      assert.equal(archive.wasmHash, first.wasmHash);
      assert.equal(first.wasmHash, `blake3:${blake3Hex(archive.wasm!)}`);
    });
    await t.step(
      "the archived manifest carries the input schema; the source one is untouched",
      async () => {
        assert.deepEqual(archive.manifest.tool[0].input_schema, {
          type: "object",
          properties: { who: { type: "string", description: "Who." } },
          required: ["who"],
        });
        assert.equal(await Deno.readTextFile(join(dir, "Capsule.toml")), HELLO_TOML);
      },
    );
    await t.step(
      "a second build of the same sources comes from the cache, byte for byte",
      async () => {
        const again = await buildCapsule(dir, { cacheDir });
        assert.equal(again.cached, true);
        assert.deepEqual(again.archive, first.archive);
      },
    );
    await t.step("a changed source is a cache miss", async () => {
      // A comment no earlier run wrote: the shared cache cannot hold this source yet.
      const edited = `${HELLO_TS}// ${crypto.randomUUID()}\n`;
      await Deno.writeTextFile(join(dir, "assembly", "index.ts"), edited);
      const changed = await buildCapsule(dir, { cacheDir });
      assert.equal(changed.cached, false);
      assert.equal((await buildCapsule(dir, { cacheDir })).cached, true);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("buildCapsule() names both sides when Capsule.toml and the code disagree", async () => {
  const dir = await capsule({
    "Capsule.toml": HELLO_TOML.replace('name = "hello"', 'name = "declared-only"'),
    "assembly/index.ts": HELLO_TS,
  });
  try {
    await assert.rejects(() => buildCapsule(dir, { cacheDir }), (e) => {
      assert.ok(hasCode(e, "BUILD_MANIFEST_MISMATCH"), String(e));
      const msg = (e as Error).message;
      assert.match(
        msg,
        /\[\[tool\]\] "declared-only" names handler "tool_declared_only", which assembly\/index\.ts does not export/,
      );
      assert.match(
        msg,
        /assembly\/index\.ts:2:16: @tool function "hello" implements tool "hello", but Capsule\.toml declares no \[\[tool\]\] named "hello"/,
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const PREBUILT = wat(`(module
  (import "astrid" "log" (func $log (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "astrid_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "tool_ping") (param i32 i32) (result i64) (i64.const 0)))`);

Deno.test("buildCapsule() packs a prebuilt module from another language", async (t) => {
  const toml =
    `[package]\nname = "raw"\nversion = "0.1.0"\n\n[wasm]\nfile = "raw.wasm"\n\n[[tool]]\nname = "ping"\ndescription = "Pings"\n`;
  const dir = await capsule({ "Capsule.toml": toml, "raw.wasm": PREBUILT });
  try {
    await t.step("its handlers are checked and it is archived as is", async () => {
      const r = await buildCapsule(dir, { cacheDir });
      assert.equal(r.source, "prebuilt");
      const archive = await readArchive(r.archive);
      assert.deepEqual(archive.wasm, PREBUILT);
    });
    await t.step("a declared tool the module does not export is refused", async () => {
      await Deno.writeTextFile(join(dir, "Capsule.toml"), toml.replace('"ping"', '"pong"'));
      await assert.rejects(
        () => buildCapsule(dir, { cacheDir }),
        (e) =>
          hasCode(e, "BUILD_MANIFEST_MISMATCH") &&
          /names handler "tool_pong", which raw\.wasm does not export/.test((e as Error).message) &&
          /raw\.wasm exports "tool_ping", a tool handler by its name, but Capsule\.toml declares no \[\[tool\]\]/
            .test((e as Error).message),
      );
    });
    await t.step("an import outside the host ABI is refused with a fix", async () => {
      await Deno.writeTextFile(join(dir, "Capsule.toml"), toml);
      await Deno.writeFile(
        join(dir, "raw.wasm"),
        wat(`(module (import "env" "console.log" (func (param i32))))`),
      );
      await assert.rejects(
        () => buildCapsule(dir, { cacheDir }),
        (e) =>
          hasCode(e, "BUILD_IMPORT_DENIED") &&
          /import "env\.console\.log" is not allowed: capsules import only from "astrid"; use log\.info\(\)/
            .test((e as Error).message),
      );
    });
    await t.step("a [wasm] hash that pins other bytes is refused", async () => {
      await Deno.writeFile(join(dir, "raw.wasm"), PREBUILT);
      await Deno.writeTextFile(
        join(dir, "Capsule.toml"),
        toml.replace('file = "raw.wasm"', `file = "raw.wasm"\nhash = "blake3:${"0".repeat(64)}"`),
      );
      await assert.rejects(
        () => buildCapsule(dir, { cacheDir }),
        (e) =>
          hasCode(e, "BUILD_HASH_MISMATCH") &&
          (e as Error).message.includes(`blake3:${blake3Hex(PREBUILT)}`),
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("buildCapsule() archives a capsule without [wasm] (static content only)", async () => {
  const dir = await capsule({
    "Capsule.toml":
      `[package]\nname = "ctx"\nversion = "0.1.0"\n\n[static]\ncontext_files = ["static/context.md"]\n`,
    "static/context.md": "Be brief.\n",
  });
  try {
    const r = await buildCapsule(dir, { cacheDir });
    assert.equal(r.source, "static");
    const archive = await readArchive(r.archive);
    assert.deepEqual(archive.members.map((m) => m.path), ["Capsule.toml", "static/context.md"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("astrid build prints the archive, reports errors located, and exits 1 on failure", async (t) => {
  const dir = await capsule({ "Capsule.toml": HELLO_TOML, "assembly/index.ts": HELLO_TS });
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l) };
  const env = Deno.env.get("ASTRID_BUILD_CACHE");
  Deno.env.set("ASTRID_BUILD_CACHE", cacheDir);
  try {
    await t.step("success: the archive, the module, the tools", async () => {
      assert.equal(await runCli(["build", dir], io), 0);
      assert.match(out[0], /^Built hi 1\.2\.3 → .*\/dist\/hi\.capsule$/);
      assert.match(out.join("\n"), /module: +\d+\.\d KB, blake3:[0-9a-f]{64}/);
      assert.match(out.join("\n"), /tools: +hello → tool_hello/);
    });
    await t.step("--json prints the result", async () => {
      out.length = 0;
      assert.equal(await runCli(["build", dir, "--json"], io), 0);
      const json = JSON.parse(out.join("\n"));
      assert.equal(json.name, "hi");
      assert.equal(json.entry_points[0].export, "tool_hello");
    });
    await t.step("a compile error exits 1 with file:line:column", async () => {
      await Deno.writeTextFile(
        join(dir, "assembly", "index.ts"),
        `${HELLO_TS}\nlet x: i32 = "no";\n`,
      );
      err.length = 0;
      assert.equal(await runCli(["build", dir], io), 1);
      assert.match(
        err.join("\n"),
        /assembly\/index\.ts:4:14: error TS2322: Type '~lib\/string\/String' is not assignable to type 'i32'/,
      );
    });
    await t.step("a bad manifest exits 1 naming file and line", async () => {
      await Deno.writeTextFile(
        join(dir, "Capsule.toml"),
        HELLO_TOML.replace("[wasm]", "[wasm]\nfiel = 1"),
      );
      err.length = 0;
      assert.equal(await runCli(["build", dir], io), 1);
      assert.match(err.join("\n"), /Capsule\.toml:6: wasm\.fiel: unknown key "fiel"/);
    });
    await t.step("an unknown flag is a usage error (exit 2)", async () => {
      assert.equal(await runCli(["build", "--nope"], io), 2);
    });
    assert.ok(parseManifest(HELLO_TOML, { file: "x" }));
  } finally {
    if (env === undefined) Deno.env.delete("ASTRID_BUILD_CACHE");
    else Deno.env.set("ASTRID_BUILD_CACHE", env);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the raw-ABI WAT example of docs/capsule_authoring.md builds and answers pong", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/capsule_authoring.md", import.meta.url));
  const block = (marker: string, lang: string) =>
    new RegExp(`<!-- ${marker} -->\\s*\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(doc)![1];
  const dir = await capsule({
    "Capsule.toml": block("wat-manifest", "toml"),
    "ping.wasm": wat(block("wat-example", "wat")),
  });
  try {
    await using k = await testCapsule(dir, { build: { cacheDir } });
    assert.equal(k.build.source, "prebuilt");
    const r = await k.callTool("ping", {});
    assert.deepEqual([r.isError, r.content], [false, "pong"]);
    assert.match(await k.logText({ waitFor: "ping!" }), /INFO \[[^\]]+\] ping!/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
