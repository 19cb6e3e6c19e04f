/**
 * `astrid keypair pubkey [--format hex|openssh]`: prints the runtime public key, which is all
 * a third party needs to verify an exported audit chain.
 *
 * @module
 */
import { KeyPair } from "../kernel/crypto/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

const USAGE = `Usage:
  astrid keypair pubkey [--format hex|openssh]
      Print the runtime public key (creating the key on first use)`;

/** Runs `astrid keypair …`. */
export async function runKeypair(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    io.out(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "pubkey") {
    throw new UsageError("keypair", `Unknown keypair command "${sub}": use pubkey`);
  }
  const { values } = parseVerbArgs("keypair", rest, { format: { type: "string" } });
  const format = values.format ?? "hex";
  if (format !== "hex" && format !== "openssh") {
    throw new UsageError("keypair", `Invalid --format "${format}": use hex or openssh`);
  }
  const home = await AstridHome.open();
  const key = await KeyPair.loadOrCreate(home.runtimeKeyPath);
  io.out(format === "hex" ? key.publicKeyHex : toOpenSsh(key.publicKey, "astrid-runtime"));
  return 0;
}

/** Formats an ed25519 public key as an OpenSSH `authorized_keys` line. */
export function toOpenSsh(publicKey: Uint8Array, comment: string): string {
  const type = new TextEncoder().encode("ssh-ed25519");
  const blob = new Uint8Array(4 + type.length + 4 + publicKey.length);
  const view = new DataView(blob.buffer);
  view.setUint32(0, type.length);
  blob.set(type, 4);
  view.setUint32(4 + type.length, publicKey.length);
  blob.set(publicKey, 8 + type.length);
  return `ssh-ed25519 ${btoa(String.fromCharCode(...blob))} ${comment}`;
}
