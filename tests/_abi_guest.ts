/**
 * The host-ABI test guest (shared harness, used by `_abi_fixture.ts`): ONE WebAssembly module,
 * written in WAT and compiled with `wabt`, that imports every function of the host ABI table
 * and exports, for each, `call_<name>(ptr, len) -> i64` forwarding its payload as the request
 * and returning the host's reply as its own. It also exports `memory` and `astrid_alloc` (a
 * bump allocator that wraps and grows), so any request and reply fit.
 *
 * @module
 */
import wabtInit from "wabt";
import { HOST_FUNCTION_NAMES } from "../host_abi/mod.ts";

const wabt = await wabtInit();

/** Compiles WAT text to a wasm binary. */
export function compileWat(text: string): Uint8Array {
  const module = wabt.parseWat("abi_guest.wat", text);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** The WAT of the guest importing `names` (default: the whole table). */
export function abiGuestWat(names: readonly string[] = HOST_FUNCTION_NAMES): string {
  const imports = names.map((n) =>
    `(import "astrid" "${n}" (func $${n} (param i32 i32) (result i64)))`
  ).join("\n  ");
  const exports = names.map((n) =>
    `(func (export "call_${n}") (param $p i32) (param $l i32) (result i64)
    (call $${n} (local.get $p) (local.get $l)))`
  ).join("\n  ");
  return `(module
  ${imports}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 1024))
  (func $alloc (export "astrid_alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $size i32)
    (local.set $size (i32.mul (memory.size) (i32.const 65536)))
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (if (i32.gt_u (local.get $end) (local.get $size))
      (then
        (local.set $p (i32.const 1024))
        (local.set $end (i32.add (i32.const 1024) (local.get $len)))
        (if (i32.gt_u (local.get $end) (local.get $size))
          (then
            (if (i32.lt_s
                  (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $size))
                    (i32.const 16)) (i32.const 1)))
                  (i32.const 0))
              (then (return (i32.const 0))))))))
    (global.set $heap (i32.and (i32.add (local.get $end) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  ${exports}
)`;
}

let cached: Uint8Array | undefined;

/** The compiled guest importing the whole table (compiled once per process). */
export function abiGuest(): Uint8Array {
  cached ??= compileWat(abiGuestWat());
  return cached;
}
