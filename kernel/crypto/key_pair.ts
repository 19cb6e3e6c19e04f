/**
 * Ed25519 signing keys. Backed by WebCrypto, chosen by `bench/crypto_bench.ts` (sign about 3.5×
 * and verify about 12× faster than `@noble/ed25519` on these machines).
 *
 * A key file holds the raw 32-byte seed and nothing else, mode 0600, written atomically.
 *
 * @module
 */
import { atomicWrite } from "../home/mod.ts";
import { fromHex, toHex } from "./bytes.ts";
import { CryptoCode, CryptoError } from "./errors.ts";

const PKCS8_PREFIX = fromHex("302e020100300506032b657004220420");
const ED25519 = { name: "Ed25519" } as const;

/** Length of an ed25519 seed, public key, and signature in bytes. */
export const ED25519_LENGTHS = { seed: 32, publicKey: 32, signature: 64 } as const;

/** Something that signs bytes and tells its public key. */
export interface Signer {
  /** The 32-byte ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Signs `message`; returns the 64-byte signature. */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** An ed25519 key pair whose private half never leaves this object. */
export class KeyPair implements Signer {
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  #privateKey: CryptoKey;
  #seed: Uint8Array;

  private constructor(seed: Uint8Array, privateKey: CryptoKey, publicKey: Uint8Array) {
    this.#seed = seed;
    this.#privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** Generates a new key pair from the OS CSPRNG. */
  static generate(): Promise<KeyPair> {
    return KeyPair.fromSeed(crypto.getRandomValues(new Uint8Array(32)));
  }

  /** Rebuilds a key pair from its 32-byte seed. */
  static async fromSeed(seed: Uint8Array): Promise<KeyPair> {
    if (seed.length !== ED25519_LENGTHS.seed) {
      throw new CryptoError(
        CryptoCode.KEY_INVALID,
        `An ed25519 seed is 32 bytes, got ${seed.length}`,
        { data: { field: "seed" } },
      );
    }
    const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + 32);
    pkcs8.set(PKCS8_PREFIX);
    pkcs8.set(seed, PKCS8_PREFIX.length);
    const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, ED25519, true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", extractable);
    const publicKey = base64UrlDecode(jwk.x!);
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, ED25519, false, ["sign"]);
    pkcs8.fill(0);
    return new KeyPair(seed.slice(), privateKey, publicKey);
  }

  /** Signs `message` with the private key. */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.sign(ED25519, this.#privateKey, message as BufferSource),
    );
  }

  /** The public key as lowercase hex. */
  get publicKeyHex(): string {
    return toHex(this.publicKey);
  }

  /** Writes the seed to `path` atomically with mode 0600. */
  async save(path: string): Promise<void> {
    await atomicWrite(path, this.#seed, { mode: 0o600 });
  }

  /** Loads a key pair from a seed file, refusing one readable by group or others. */
  static async load(path: string): Promise<KeyPair> {
    let seed: Uint8Array;
    try {
      const info = await Deno.stat(path);
      if (Deno.build.os !== "windows" && info.mode !== null && (info.mode & 0o077) !== 0) {
        throw new Error(
          `mode ${(info.mode & 0o777).toString(8)} is too open (want 600): run chmod 600 "${path}"`,
        );
      }
      seed = await Deno.readFile(path);
    } catch (cause) {
      throw new CryptoError(
        CryptoCode.KEY_INVALID,
        `Cannot load key "${path}": ${(cause as Error).message}`,
        { data: { path }, cause },
      );
    }
    if (seed.length !== ED25519_LENGTHS.seed) {
      throw new CryptoError(
        CryptoCode.KEY_INVALID,
        `Cannot load key "${path}": expected 32 bytes, found ${seed.length}`,
        { data: { path } },
      );
    }
    return KeyPair.fromSeed(seed);
  }

  /** Loads the key at `path`, or generates and saves one when the file does not exist. */
  static async loadOrCreate(path: string): Promise<KeyPair> {
    try {
      await Deno.lstat(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      const pair = await KeyPair.generate();
      await pair.save(path);
      return pair;
    }
    return KeyPair.load(path);
  }
}

const verifyKeys = new Map<string, Promise<CryptoKey>>();

/**
 * Verifies an ed25519 `signature` of `message` under `publicKey`. Malformed keys or
 * signatures verify as false. Imported public keys are cached.
 */
export async function verifySignature(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (
    publicKey.length !== ED25519_LENGTHS.publicKey ||
    signature.length !== ED25519_LENGTHS.signature
  ) return false;
  const id = toHex(publicKey);
  let key = verifyKeys.get(id);
  if (key === undefined) {
    key = crypto.subtle.importKey("raw", publicKey.slice(), ED25519, false, ["verify"]);
    if (verifyKeys.size > 1024) verifyKeys.clear();
    verifyKeys.set(id, key);
  }
  try {
    return await crypto.subtle.verify(
      ED25519,
      await key,
      signature as BufferSource,
      message as BufferSource,
    );
  } catch {
    verifyKeys.delete(id);
    return false;
  }
}

function base64UrlDecode(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
