/**
 * Content-addressed capsule binaries: `bin/<blake3 hex>.wasm` under the Astrid home, each
 * module stored once and shared by every principal that installs it. Every read re-hashes the
 * bytes and refuses a file that does not match its name, so a binary changed on disk never
 * loads.
 *
 * @module
 */
import { join } from "node:path";
import { blake3Hex } from "../crypto/mod.ts";
import { atomicWrite } from "../home/mod.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";

/** The largest binary the store accepts or returns (64 MiB, the archive limit). */
export const MAX_BINARY_BYTES = 64 * 1024 * 1024;

const ADDRESS_RE = /^blake3:([0-9a-f]{64})$/;

/** Returns the hex digest of a `blake3:<hex>` address, or throws `BINARY_BAD_HASH`. */
export function hashHex(address: string): string {
  const m = typeof address === "string" ? ADDRESS_RE.exec(address) : null;
  if (!m) {
    throw new CapsuleError(
      CapsuleCode.BINARY_BAD_HASH,
      `Invalid binary hash "${String(address)}": expected "blake3:" and 64 lowercase hex digits`,
      { data: { hash: String(address) } },
    );
  }
  return m[1];
}

/** The `blake3:<hex>` address of `bytes`. */
export function binaryAddress(bytes: Uint8Array): string {
  return `blake3:${blake3Hex(bytes)}`;
}

/** The binaries under one directory (normally `AstridHome.bin`). */
export class BinaryStore {
  /** The directory holding `<hex>.wasm` files. */
  readonly dir: string;

  /** A store over `dir`, which must exist (the home creates `bin/`). */
  constructor(dir: string) {
    this.dir = dir;
  }

  /** The file path of `address` (whether or not it exists). */
  path(address: string): string {
    return join(this.dir, `${hashHex(address)}.wasm`);
  }

  /**
   * Stores `bytes` and returns their address. Atomic and idempotent: a file already holding
   * the right bytes is kept; one whose bytes do not match its name is replaced.
   */
  async put(bytes: Uint8Array): Promise<string> {
    if (bytes.length > MAX_BINARY_BYTES) {
      throw new CapsuleError(
        CapsuleCode.BINARY_TOO_LARGE,
        `Cannot store a binary of ${bytes.length} bytes: the limit is ${MAX_BINARY_BYTES}`,
        { data: { limit: MAX_BINARY_BYTES } },
      );
    }
    const address = binaryAddress(bytes);
    const path = this.path(address);
    try {
      const existing = await Deno.readFile(path);
      if (binaryAddress(existing) === address) return address;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    await atomicWrite(path, bytes, { mode: 0o644 });
    return address;
  }

  /**
   * Reads the binary at `address`, re-hashing it: throws `BINARY_NOT_FOUND` when absent and
   * `BINARY_HASH_MISMATCH` when its bytes hash to anything else.
   */
  async get(address: string): Promise<Uint8Array> {
    const path = this.path(address);
    let bytes: Uint8Array;
    try {
      const info = await Deno.stat(path);
      if (!info.isFile) throw new Deno.errors.NotFound();
      if (info.size > MAX_BINARY_BYTES) {
        throw new CapsuleError(
          CapsuleCode.BINARY_TOO_LARGE,
          `Refusing binary ${address}: "${path}" is ${info.size} bytes, the limit is ${MAX_BINARY_BYTES}`,
          { data: { hash: address, path, limit: MAX_BINARY_BYTES } },
        );
      }
      bytes = await Deno.readFile(path);
    } catch (err) {
      if (err instanceof CapsuleError) throw err;
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      throw new CapsuleError(
        CapsuleCode.BINARY_NOT_FOUND,
        `Binary ${address} is not in the store: "${path}" is missing; reinstall the capsule`,
        { data: { hash: address, path } },
      );
    }
    const actual = binaryAddress(bytes);
    if (actual !== address) {
      throw new CapsuleError(
        CapsuleCode.BINARY_HASH_MISMATCH,
        `Refusing binary ${address}: "${path}" hashes to ${actual}; the file was changed on disk, reinstall the capsule`,
        { data: { hash: address, actual, path } },
      );
    }
    return bytes;
  }

  /** True when a file exists for `address` (its bytes are checked by {@link get}, not here). */
  async has(address: string): Promise<boolean> {
    try {
      return (await Deno.stat(this.path(address))).isFile;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  /** Deletes the binary at `address`; false when there was none. */
  async remove(address: string): Promise<boolean> {
    try {
      await Deno.remove(this.path(address));
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  /** Every stored address, sorted (files not named `<hex>.wasm` are ignored). */
  async list(): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        const m = /^([0-9a-f]{64})\.wasm$/.exec(e.name);
        if (m && e.isFile) out.push(`blake3:${m[1]}`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return out.sort();
  }
}
