import assert from "node:assert/strict";
import wabtInit from "wabt";
import { hasCode } from "../../kernel/errors.ts";
import { checkModule, handlerExports, importProblems } from "./wasm_check.ts";
import { parseWasmBinary } from "../../kernel/capsule/engine/wasm/mod.ts";

const wabt = await wabtInit();

function wat(text: string): Uint8Array {
  const m = wabt.parseWat("t.wat", text);
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}

Deno.test("importProblems() refuses every import outside the host ABI, with a fix", () => {
  const wasm = wat(`(module
    (import "env" "abort" (func (param i32 i32 i32 i32)))
    (import "env" "Date.now" (func (result f64)))
    (import "astrid" "fs_chmod" (func (param i32 i32) (result i64)))
    (import "astrid" "kv_get" (func (param i32) (result i64)))
    (import "astrid" "log" (func (param i32 i32) (result i64)))
    (import "astrid" "memory" (memory 1)))`);
  const problems = importProblems(parseWasmBinary(wasm)).map((p) => p.problem);
  assert.deepEqual(problems, [
    'import "env.abort" is not allowed: capsules import only from "astrid"; build with astrid build, which maps abort to the SDK',
    'import "env.Date.now" is not allowed: capsules import only from "astrid"; use time.nowMs() from "@astrid/sdk" instead of Date.now()',
    'import "astrid.fs_chmod" is not in the host ABI table (docs/host_abi.md)',
    'import "astrid.kv_get" has type (i32) -> i64, expected (i32, i32) -> i64',
  ]);
});

Deno.test("checkModule() throws BUILD_IMPORT_DENIED listing each refused import", () => {
  const wasm = wat(
    `(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))`,
  );
  assert.throws(
    () => checkModule(wasm, "bad"),
    (e) =>
      hasCode(e, "BUILD_IMPORT_DENIED") &&
      (e as Error).message.includes('Capsule "bad" imports what the host refuses: 1 import(s)') &&
      (e as Error).message.includes('import "wasi_snapshot_preview1.fd_write" is not allowed'),
  );
});

Deno.test("handlerExports() lists (i32, i32) -> i64 exports except astrid_alloc", () => {
  const wasm = wat(`(module
    (memory (export "memory") 1)
    (func (export "astrid_alloc") (param i32) (result i32) (i32.const 0))
    (func (export "tool_a") (param i32 i32) (result i64) (i64.const 0))
    (func (export "helper") (param i32) (result i32) (i32.const 0)))`);
  assert.deepEqual([...handlerExports(parseWasmBinary(wasm))], ["tool_a"]);
});
