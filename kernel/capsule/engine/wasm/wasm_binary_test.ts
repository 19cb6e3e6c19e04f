import assert from "node:assert/strict";
import { EngineCode, EngineError } from "./errors.ts";
import {
  formatFuncType,
  limitWasmBinary,
  MAX_MEMORY_PAGES,
  parseWasmBinary,
  type WasmBinaryInfo,
} from "./wasm_binary.ts";
import { wat } from "./_test_guests.ts";

function isEngineError(code: string, re?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${err}`);
    assert.equal(err.code, code);
    if (re !== undefined) assert.match(err.message, re);
    return true;
  };
}

/** Instantiates in this thread and returns the memory plus what growing it to 4 GiB yields. */
function growToLimit(bytes: Uint8Array): { pages: number; growBeyond: number } {
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const { exports } = new WebAssembly.Instance(module, {});
  const memory = exports.memory as WebAssembly.Memory;
  const grow = exports.grow as (pages: number) => number;
  while (grow(1) >= 0) { /* grow one page at a time until refused */ }
  return { pages: memory.buffer.byteLength / 65_536, growBeyond: grow(65_536) };
}

const growFn = `(func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))`;

Deno.test("limitWasmBinary() holds memory at 1024 pages whatever the module declares", async (t) => {
  await t.step("a memory with no maximum gets maximum 1024", () => {
    const { bytes, info } = limitWasmBinary(wat(`(module (memory (export "memory") 1) ${growFn})`));
    assert.deepEqual(info.memories, [{ min: 1, max: 1024, shared: false, is64: false }]);
    assert.deepEqual(parseWasmBinary(bytes).memories[0].max, 1024);
    assert.deepEqual(growToLimit(bytes), { pages: 1024, growBeyond: -1 });
  });

  await t.step("a maximum of 65536 pages (4 GiB) is lowered to 1024", () => {
    const { bytes } = limitWasmBinary(wat(`(module (memory (export "memory") 1 65536) ${growFn})`));
    assert.equal(parseWasmBinary(bytes).memories[0].max, MAX_MEMORY_PAGES);
    assert.deepEqual(growToLimit(bytes), { pages: 1024, growBeyond: -1 });
  });

  await t.step("a smaller maximum is kept", () => {
    const input = wat(`(module (memory (export "memory") 1 10) ${growFn})`);
    const { bytes } = limitWasmBinary(input);
    assert.equal(bytes, input, "unchanged bytes are returned as is");
    assert.deepEqual(growToLimit(bytes), { pages: 10, growBeyond: -1 });
  });

  await t.step("a lower configured limit applies", () => {
    const { bytes } = limitWasmBinary(wat(`(module (memory (export "memory") 1) ${growFn})`), {
      maxMemoryPages: 16,
    });
    assert.deepEqual(growToLimit(bytes), { pages: 16, growBeyond: -1 });
  });

  await t.step("a minimum above the limit is refused with both figures", () => {
    assert.throws(
      () => limitWasmBinary(wat(`(module (memory 2048))`), { capsule: "fat" }),
      isEngineError(
        EngineCode.WASM_MEMORY_LIMIT,
        /^Cannot load capsule "fat": memory minimum 2048 pages \(128 MiB\) exceeds the limit of 1024 pages \(64 MiB\)$/,
      ),
    );
  });

  await t.step("a module with no memory at all is unchanged", () => {
    const input = wat(`(module (func (export "f") (param i32 i32) (result i64) (i64.const 0)))`);
    const { bytes, info } = limitWasmBinary(input);
    assert.equal(bytes, input);
    assert.deepEqual(info.memories, []);
  });

  await t.step("a shared memory is refused", () => {
    assert.throws(
      () => limitWasmBinary(wat(`(module (memory 1 2 shared))`, { threads: true })),
      isEngineError(EngineCode.WASM_MEMORY_LIMIT, /a shared memory is not allowed/),
    );
  });

  await t.step("two memories are refused", () => {
    assert.throws(
      () => limitWasmBinary(wat(`(module (memory 1) (memory 1))`, { multi_memory: true })),
      isEngineError(EngineCode.WASM_MEMORY_LIMIT, /the module has 2 memories, the limit is 1$/),
    );
  });

  await t.step("an imported memory is reported, not rewritten", () => {
    const { info } = limitWasmBinary(wat(`(module (import "astrid" "memory" (memory 1 65536)))`));
    assert.deepEqual(info.imports[0], {
      module: "astrid",
      name: "memory",
      kind: "memory",
      limits: { min: 1, max: 65536, shared: false, is64: false },
    });
  });

  await t.step("an imported memory whose minimum exceeds the limit is refused", () => {
    assert.throws(
      () => limitWasmBinary(wat(`(module (import "astrid" "memory" (memory 4096)))`)),
      isEngineError(EngineCode.WASM_MEMORY_LIMIT, /memory minimum 4096 pages/),
    );
  });

  await t.step("a table with no maximum is capped; one too large is refused", () => {
    const { bytes } = limitWasmBinary(wat(`(module (table 1 funcref) (memory 1 2))`), {
      maxTableElements: 50,
    });
    assert.deepEqual(parseWasmBinary(bytes).tables, [{
      min: 1,
      max: 50,
      shared: false,
      is64: false,
    }]);
    assert.equal(parseWasmBinary(bytes).memories[0].max, 2, "the memory section is untouched");
    new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    assert.throws(
      () => limitWasmBinary(wat(`(module (table 60 funcref))`), { maxTableElements: 50 }),
      isEngineError(
        EngineCode.WASM_MEMORY_LIMIT,
        /table minimum 60 elements exceeds the limit of 50/,
      ),
    );
  });

  await t.step("a configured limit above 1024 pages is an option error", () => {
    assert.throws(
      () => limitWasmBinary(wat(`(module)`), { maxMemoryPages: 2048 }),
      isEngineError(
        EngineCode.WASM_INVALID_OPTION,
        /"maxMemoryPages" is "2048": expected 1 to 1024/,
      ),
    );
  });
});

Deno.test("limitWasmBinary() keeps every other section byte for byte", () => {
  const custom = [0x00, 8, 4, ...new TextEncoder().encode("note"), 0x61, 0x62, 0x63];
  const input = Uint8Array.from([
    ...wat(`(module
    (type $t (func (param i32) (result i32)))
    (import "astrid" "clock_ms" (func (param i32 i32) (result i64)))
    (memory (export "memory") 1)
    (data (i32.const 16) "hello")
    (func (export "id") (type $t) (local.get 0)))`),
    ...custom,
  ]);
  const { bytes } = limitWasmBinary(input);
  assert.ok(bytes.length >= input.length);
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const { exports } = new WebAssembly.Instance(module, {
    astrid: { clock_ms: () => 0n },
  });
  assert.equal((exports.id as (n: number) => number)(7), 7);
  const mem = new Uint8Array((exports.memory as WebAssembly.Memory).buffer, 16, 5);
  assert.equal(new TextDecoder().decode(mem), "hello");
  assert.equal(WebAssembly.Module.customSections(module, "note").length, 1);
});

Deno.test("parseWasmBinary() reads imports and exports with their function types", () => {
  const info: WasmBinaryInfo = parseWasmBinary(wat(`(module
    (import "astrid" "kv_get" (func (param i32 i32) (result i64)))
    (import "env" "g" (global i32))
    (import "env" "t" (table 1 funcref))
    (memory (export "memory") 1)
    (global $g (export "gl") (mut i32) (i32.const 0))
    (func (export "handle") (param i32 i32) (result i64) (i64.const 0))
    (func (export "astrid_alloc") (param i32) (result i32) (i32.const 8))
    (func (export "nothing"))
    (start 4))`));
  assert.deepEqual(
    info.imports.map((i) => [`${i.module}.${i.name}`, i.kind, formatFuncType(i.type)]),
    [
      ["astrid.kv_get", "function", "(i32, i32) -> i64"],
      ["env.g", "global", "(unknown type)"],
      ["env.t", "table", "(unknown type)"],
    ],
  );
  assert.deepEqual(
    info.exports.map((e) => [e.name, e.kind, e.kind === "function" ? formatFuncType(e.type) : ""]),
    [
      ["memory", "memory", ""],
      ["gl", "global", ""],
      ["handle", "function", "(i32, i32) -> i64"],
      ["astrid_alloc", "function", "(i32) -> i32"],
      ["nothing", "function", "() -> ()"],
    ],
  );
  assert.equal(info.hasStart, true);
});

Deno.test("parseWasmBinary() refuses malformed binaries with the byte offset", async (t) => {
  const good = wat(`(module (memory 1) (func (export "f")))`);

  await t.step("not wasm", () => {
    assert.throws(
      () => parseWasmBinary(new TextEncoder().encode("#!/bin/sh\necho hi\n"), { capsule: "x" }),
      isEngineError(
        EngineCode.WASM_LOAD,
        /^Cannot load capsule "x": malformed wasm binary at byte 0: missing the \\0asm magic number$/,
      ),
    );
  });

  await t.step("too short", () => {
    assert.throws(
      () => parseWasmBinary(new Uint8Array([0, 0x61])),
      isEngineError(EngineCode.WASM_LOAD, /shorter than the 8-byte header/),
    );
  });

  await t.step("a component", () => {
    const component = Uint8Array.from([0, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
    assert.throws(
      () => parseWasmBinary(component),
      isEngineError(EngineCode.WASM_LOAD, /this is a component/),
    );
  });

  await t.step("a section running past the end", () => {
    assert.throws(
      () => parseWasmBinary(good.subarray(0, good.length - 2)),
      isEngineError(EngineCode.WASM_LOAD, /section 10 of \d+ bytes runs past the end/),
    );
  });

  await t.step("an unknown section id", () => {
    const bad = Uint8Array.from([...good.subarray(0, 8), 0x42, 0x00]);
    assert.throws(
      () => parseWasmBinary(bad),
      isEngineError(EngineCode.WASM_LOAD, /byte 8: unknown section id 66/),
    );
  });

  await t.step("an overlong LEB128", () => {
    const bad = Uint8Array.from([...good.subarray(0, 8), 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    assert.throws(
      () => parseWasmBinary(bad),
      isEngineError(EngineCode.WASM_LOAD, /LEB128 value longer than 5 bytes/),
    );
  });
});
