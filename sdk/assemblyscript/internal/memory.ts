/**
 * Guest memory the host writes into.
 *
 * `astrid_alloc(len)` hands out, for a reply of at most {@link SCRATCH_BYTES}, a static scratch
 * area outside the collector's heap (no allocation, no pinning: the common case of small
 * replies costs nothing); for a larger one, a pinned `ArrayBuffer` the collector leaves alone
 * until {@link adopt} unpins it. The scratch area is reused by the next `astrid_alloc`, so a
 * reply in it must be read before the next host call — the SDK always does (and the
 * invocation payload is decoded before the handler makes any).
 */

/** Replies up to this many bytes land in the scratch area. */
export const SCRATCH_BYTES: usize = 4096;
/** The scratch area (a static data segment). */
export const SCRATCH: usize = memory.data(<i32>SCRATCH_BYTES, 16);

/** `astrid_alloc(len) -> ptr`: `len` writable bytes for a host reply or a payload. */
export function astrid_alloc(len: i32): usize {
  if (len <= 0) return 0;
  if (<usize>len <= SCRATCH_BYTES) return SCRATCH;
  const ptr = __new(<usize>len, idof<ArrayBuffer>());
  __pin(ptr);
  return ptr;
}

/** True when `ptr` is the scratch area. */
// @ts-ignore: decorator
@inline
export function isScratch(ptr: usize): bool {
  return ptr == SCRATCH;
}

/**
 * Takes back a heap region `astrid_alloc` handed out: unpins it and returns it as a buffer. A
 * scratch region is copied into a new buffer (use {@link isScratch} to read it in place).
 */
export function adopt(ptr: usize, len: usize): ArrayBuffer {
  if (isScratch(ptr)) {
    const copy = new ArrayBuffer(<i32>len);
    memory.copy(changetype<usize>(copy), ptr, len);
    return copy;
  }
  __unpin(ptr);
  return changetype<ArrayBuffer>(ptr);
}

/** Packs a region as the i64 exports and host functions return: `(ptr << 32) | len`. */
// @ts-ignore: decorator
@inline
export function pack(ptr: usize, len: usize): u64 {
  return (<u64>ptr << 32) | <u64>len;
}

/** The packed region of `buf` (0 for an empty buffer). */
export function packBuffer(buf: ArrayBuffer): u64 {
  const len = buf.byteLength;
  return len == 0 ? 0 : pack(changetype<usize>(buf), <usize>len);
}

/** The packed region of `text` as UTF-8. */
export function packText(text: string): u64 {
  return packBuffer(String.UTF8.encode(text));
}
