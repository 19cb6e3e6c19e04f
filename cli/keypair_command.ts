/**
 * `astrid keypair generate|list|show|pubkey|delete`: the ed25519 keys of a home, under
 * `keys/` (0700), each file a 32-byte seed (0600):
 *
 * - `runtime` (`keys/runtime.key`): the kernel's own key. It signs every audit entry and
 *   capability token; the daemon creates it on first boot. Its public key is all a third party
 *   needs to verify an audit chain (`astrid keypair pubkey`).
 * - operator keys (`keys/<name>.key`, any other name): keys the operator generates to sign
 *   what they publish — distros and capsules, later. The kernel never uses them.
 *
 * Deleting or regenerating the runtime key is refused without `--force`: audit chains signed
 * with the old key then verify only with the old public key (`astrid audit verify --pubkey`),
 * which is printed first, and the daemon must be stopped.
 *
 * @module
 */
import { join } from "node:path";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { runPaths } from "../kernel/daemon/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { AstridError, CommonCode } from "../kernel/mod.ts";
import { parseVerbArgs } from "./args.ts";
import { isInteractive, TerminalPrompter } from "./capsule_prompt.ts";
import { connectRunning } from "./ensure_daemon.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

const USAGE = `Usage:
  astrid keypair generate [NAME] [--force]
      Create keys/NAME.key (an operator key; default NAME: runtime, created if missing)
  astrid keypair list [--json]
      List the keys of this home
  astrid keypair show [NAME] [--json]
      Show a key's public key, OpenSSH form, fingerprint and file (default: runtime)
  astrid keypair pubkey [NAME] [--format hex|openssh]
      Print a public key (default: the runtime key, created on first use)
  astrid keypair delete NAME [--force] [--yes]
      Delete a key; the runtime key only with --force (audit chains then verify only with
      the old public key, which is printed first)

The runtime key signs audit entries and capability tokens; operator keys are yours, for
signing distros and capsules you publish.`;

/** The runtime key's name. */
export const RUNTIME_KEY = "runtime";
const KEY_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Runs `astrid keypair …`. */
export async function runKeypair(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    io.out(USAGE);
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case "generate":
      return await generate(rest, io);
    case "list":
      return await list(rest, io);
    case "show":
      return await show(rest, io);
    case "pubkey":
      return await pubkey(rest, io);
    case "delete":
      return await remove(rest, io);
  }
  throw new UsageError(
    "keypair",
    `Unknown keypair command "${sub}": use generate, list, show, pubkey or delete`,
  );
}

function keyName(value: string | undefined): string {
  const name = value ?? RUNTIME_KEY;
  if (!KEY_NAME_RE.test(name)) {
    throw new UsageError(
      "keypair",
      `Invalid key name "${name}": use 1 to 63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit`,
    );
  }
  return name;
}

function keyPath(home: AstridHome, name: string): string {
  return name === RUNTIME_KEY ? home.runtimeKeyPath : join(home.keys, `${name}.key`);
}

function notFound(name: string, path: string): AstridError {
  return new AstridError(
    CommonCode.INVALID_ARGUMENT,
    `No key "${name}": "${path}" does not exist; see astrid keypair list`,
    { data: { field: "name" } },
  );
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function daemonRunning(home: AstridHome): Promise<number | undefined> {
  const client = await connectRunning(runPaths(home.root), { client: "cli" }).catch(() => null);
  if (client === null) return undefined;
  const pid = client.welcome.pid;
  await client.close();
  return typeof pid === "number" ? pid : -1;
}

function singleName(args: string[], positionals: string[]): string | undefined {
  if (positionals.length > 1) {
    throw new UsageError("keypair", `keypair ${args[0] ?? ""} takes at most one NAME`.trim());
  }
  return positionals[0];
}

async function generate(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("keypair", args, { force: { type: "boolean" } });
  const name = keyName(singleName(["generate"], positionals));
  const home = await AstridHome.open();
  const path = keyPath(home, name);
  if (await exists(path)) {
    if (!values.force) {
      io.err(
        `error: Key "${name}" already exists at ${path}: keep it, or pass --force to replace it`,
      );
      return 1;
    }
    if (name === RUNTIME_KEY) {
      const pid = await daemonRunning(home);
      if (pid !== undefined) {
        io.err(
          `error: The daemon (PID ${pid}) is using the runtime key: stop it first (astrid stop)`,
        );
        return 1;
      }
      const old = await KeyPair.load(path);
      io.err(`warning: Replacing the runtime key. The old public key is:\n  ${old.publicKeyHex}`);
      io.err(
        "  Audit chains signed so far verify only with it: astrid audit verify --pubkey <old key>",
      );
    }
  }
  const pair = await KeyPair.generate();
  await pair.save(path);
  io.out(`Generated ${name === RUNTIME_KEY ? "the runtime key" : `key "${name}"`} at ${path}`);
  io.out(pair.publicKeyHex);
  return 0;
}

interface KeyInfo {
  name: string;
  kind: "runtime" | "operator";
  path: string;
  public_key: string | null;
  mode: string | null;
  error?: string;
}

async function keyInfo(home: AstridHome, name: string): Promise<KeyInfo> {
  const path = keyPath(home, name);
  const stat = await Deno.stat(path);
  const mode = stat.mode === null ? null : (stat.mode & 0o777).toString(8).padStart(4, "0");
  const kind = name === RUNTIME_KEY ? "runtime" : "operator";
  try {
    const pair = await KeyPair.load(path);
    return { name, kind, path, public_key: pair.publicKeyHex, mode };
  } catch (err) {
    return { name, kind, path, public_key: null, mode, error: (err as Error).message };
  }
}

async function allKeys(home: AstridHome): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(home.keys)) {
    const m = /^(.+)\.key$/.exec(e.name);
    if (m && e.isFile && KEY_NAME_RE.test(m[1])) names.push(m[1]);
  }
  return names.sort((a, b) => (a === RUNTIME_KEY ? -1 : b === RUNTIME_KEY ? 1 : a < b ? -1 : 1));
}

async function list(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("keypair", args, { json: { type: "boolean" } });
  if (positionals.length > 0) throw new UsageError("keypair", "keypair list takes no NAME");
  const home = await AstridHome.open();
  const infos = await Promise.all((await allKeys(home)).map((n) => keyInfo(home, n)));
  if (values.json) {
    io.out(JSON.stringify(infos));
    return 0;
  }
  if (infos.length === 0) {
    io.out(
      "No keys yet: the runtime key is created when the daemon first starts (or run astrid keypair generate)",
    );
    return 0;
  }
  const width = Math.max(...infos.map((i) => i.name.length), 4);
  io.out(`${"NAME".padEnd(width)}  KIND      PUBLIC KEY`);
  for (const i of infos) {
    io.out(
      `${i.name.padEnd(width)}  ${i.kind.padEnd(8)}  ${i.public_key ?? `unreadable: ${i.error}`}`,
    );
  }
  return 0;
}

async function show(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("keypair", args, { json: { type: "boolean" } });
  const name = keyName(singleName(["show"], positionals));
  const home = await AstridHome.open();
  const path = keyPath(home, name);
  if (!(await exists(path))) throw notFound(name, path);
  const info = await keyInfo(home, name);
  if (info.public_key === null) {
    io.err(`error: ${info.error}`);
    return 1;
  }
  const pair = await KeyPair.load(path);
  const fingerprint = await sshFingerprint(pair.publicKey);
  const openssh = toOpenSsh(pair.publicKey, `astrid-${name}`);
  if (values.json) {
    io.out(JSON.stringify({ ...info, openssh, fingerprint }));
    return 0;
  }
  io.out(`name:        ${name}`);
  io.out(
    `kind:        ${
      info.kind === "runtime" ? "runtime (signs audit entries and capability tokens)" : "operator"
    }`,
  );
  io.out(`algorithm:   ed25519`);
  io.out(`public key:  ${info.public_key}`);
  io.out(`openssh:     ${openssh}`);
  io.out(`fingerprint: ${fingerprint}`);
  io.out(`file:        ${path} (mode ${info.mode})`);
  return 0;
}

async function pubkey(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("keypair", args, { format: { type: "string" } });
  const name = keyName(singleName(["pubkey"], positionals));
  const format = values.format ?? "hex";
  if (format !== "hex" && format !== "openssh") {
    throw new UsageError("keypair", `Invalid --format "${format}": use hex or openssh`);
  }
  const home = await AstridHome.open();
  const path = keyPath(home, name);
  let key: KeyPair;
  if (name === RUNTIME_KEY) key = await KeyPair.loadOrCreate(path);
  else if (await exists(path)) key = await KeyPair.load(path);
  else throw notFound(name, path);
  io.out(format === "hex" ? key.publicKeyHex : toOpenSsh(key.publicKey, `astrid-${name}`));
  return 0;
}

async function remove(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("keypair", args, {
    force: { type: "boolean" },
    yes: { type: "boolean", short: "y" },
  });
  if (positionals.length !== 1) throw new UsageError("keypair", "keypair delete takes one NAME");
  const name = keyName(positionals[0]);
  const home = await AstridHome.open();
  const path = keyPath(home, name);
  if (!(await exists(path))) throw notFound(name, path);
  if (name === RUNTIME_KEY) {
    if (!values.force) {
      io.err(
        "error: Refusing to delete the runtime key: it signs the audit chains and capability tokens; pass --force to delete it anyway",
      );
      return 1;
    }
    const pid = await daemonRunning(home);
    if (pid !== undefined) {
      io.err(
        `error: The daemon (PID ${pid}) is using the runtime key: stop it first (astrid stop)`,
      );
      return 1;
    }
    const old = await KeyPair.load(path).catch(() => undefined);
    io.err("warning: Deleting the runtime key. Its public key is:");
    io.err(`  ${old?.publicKeyHex ?? "(unreadable)"}`);
    io.err(
      "  Keep it: audit chains signed so far verify only with it (astrid audit verify --pubkey <key>),",
    );
    io.err(
      "  and capability tokens it signed stop verifying. A new key is made at the next start.",
    );
  } else if (!values.yes) {
    if (!isInteractive()) {
      io.err(`error: Deleting key "${name}" needs confirmation: pass --yes`);
      return 1;
    }
    if (!(await new TerminalPrompter().confirm(`Delete key "${name}" (${path})?`, false))) {
      io.out("Kept it");
      return 1;
    }
  }
  await Deno.remove(path);
  io.out(`Deleted key "${name}" (${path})`);
  return 0;
}

/** The OpenSSH fingerprint of an ed25519 public key: `SHA256:<base64, unpadded>`. */
export async function sshFingerprint(publicKey: Uint8Array): Promise<string> {
  const blob = sshBlob(publicKey);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", blob as BufferSource));
  return `SHA256:${btoa(String.fromCharCode(...digest)).replace(/=+$/, "")}`;
}

function sshBlob(publicKey: Uint8Array): Uint8Array {
  const type = new TextEncoder().encode("ssh-ed25519");
  const blob = new Uint8Array(4 + type.length + 4 + publicKey.length);
  const view = new DataView(blob.buffer);
  view.setUint32(0, type.length);
  blob.set(type, 4);
  view.setUint32(4 + type.length, publicKey.length);
  blob.set(publicKey, 8 + type.length);
  return blob;
}

/** Formats an ed25519 public key as an OpenSSH `authorized_keys` line. */
export function toOpenSsh(publicKey: Uint8Array, comment: string): string {
  return `ssh-ed25519 ${btoa(String.fromCharCode(...sshBlob(publicKey)))} ${comment}`;
}
