/**
 * Test guests written in WAT (compiled with `wabt`), shared by this folder's tests.
 *
 * @module
 */
import wabtInit from "wabt";

const wabt = await wabtInit();

/** Compiles WAT text to a wasm binary. */
export function wat(text: string, features: Record<string, boolean> = {}): Uint8Array {
  const module = wabt.parseWat("guest.wat", text, features);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/**
 * The guest runtime every test guest starts with: one exported memory of `pages` pages, a bump
 * allocator that wraps to the base when it reaches the memory's end (grows when one allocation
 * does not fit), and `$pack(ptr, len)`.
 */
export function prelude(pages = 2): string {
  return `
  (memory (export "memory") ${pages})
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
  (func $pack (param $p i32) (param $l i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
      (i64.extend_i32_u (local.get $l))))
  (func $reply_i32 (param $v i32) (result i64)
    (local $p i32)
    (local.set $p (call $alloc (i32.const 4)))
    (i32.store (local.get $p) (local.get $v))
    (call $pack (local.get $p) (i32.const 4)))
  (func (export "echo") (param $p i32) (param $l i32) (result i64)
    (call $pack (local.get $p) (local.get $l)))
`;
}

/** An import line for host function `fn` as `$fn`. */
export function hostImport(fn: string): string {
  return `(import "astrid" "${fn}" (func $${fn} (param i32 i32) (result i64)))`;
}

/**
 * A handler export `name` that forwards its payload as the request of `astrid.fn` and returns
 * the host's reply bytes as its own reply.
 */
export function forward(name: string, fn: string): string {
  return `(func (export "${name}") (param $p i32) (param $l i32) (result i64)
    (call $${fn} (local.get $p) (local.get $l)))`;
}

/** A module: imports for `fns`, the prelude, then `body`. */
export function guest(body: string, options: { fns?: string[]; pages?: number } = {}): Uint8Array {
  const imports = (options.fns ?? []).map(hostImport).join("\n");
  return wat(`(module ${imports} ${prelude(options.pages)} ${body})`);
}
