import assert from "node:assert/strict";
import { join } from "node:path";
import { hasCode } from "../../kernel/errors.ts";
import { compileCapsule } from "./compiler.ts";
import type { BuildError } from "./errors.ts";

async function withCapsule(source: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "astrid-cc-" });
  try {
    await Deno.mkdir(join(dir, "assembly"));
    await Deno.writeTextFile(join(dir, "assembly", "index.ts"), source);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("compileCapsule() shows compiler errors as file:line:column with the message", async () => {
  await withCapsule(`export function f(): i32 {\n  return notDefined;\n}\n`, async (dir) => {
    const err = await compileCapsule(dir, { debug: true }).catch((e) => e as BuildError);
    assert.ok(hasCode(err, "BUILD_COMPILE_FAILED"));
    assert.match(
      err.message,
      /assembly\/index\.ts:2:10: error TS2304: Cannot find name 'notDefined'\./,
    );
    assert.deepEqual(
      { file: err.data?.diagnostics?.[0].file, line: err.data?.diagnostics?.[0].line },
      { file: "assembly/index.ts", line: 2 },
    );
  });
});

Deno.test("compileCapsule() refuses a directory without an entry file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => compileCapsule(dir),
      (e) =>
        hasCode(e, "BUILD_NO_CAPSULE") &&
        /entry file "assembly\/index\.ts" does not exist/.test((e as Error).message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compileCapsule() keeps names only with debug, and always imports only astrid", async () => {
  const source = `import { log } from "@astrid/sdk";
@tool function hi(): string { log.info("x"); assert(Math.random() < 2); return "hi"; }
`;
  await withCapsule(source, async (dir) => {
    const debug = await compileCapsule(dir, { debug: true });
    const release = await compileCapsule(dir);
    const names = (bytes: Uint8Array) =>
      WebAssembly.Module.customSections(
        new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>),
        "name",
      ).length;
    assert.equal(names(debug.wasm), 1);
    assert.equal(names(release.wasm), 0);
    assert.ok(release.wasm.length < debug.wasm.length);
    for (const m of [debug.wasm, release.wasm]) {
      const imports = WebAssembly.Module.imports(
        new WebAssembly.Module(m as Uint8Array<ArrayBuffer>),
      );
      assert.deepEqual([...new Set(imports.map((i) => i.module))], ["astrid"]);
    }
    assert.deepEqual(release.inputs, ["assembly/index.ts"]);
  });
});
