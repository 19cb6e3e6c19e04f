/**
 * Proves the `astrid audit` and `astrid keypair` verbs work as a user runs them: the real
 * entry point in a child process, against a real store in a temporary ASTRID_HOME.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog, auditNamespace } from "../kernel/audit/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

async function astrid(home: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
    env: { ASTRID_HOME: home, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("astrid audit verify/show and keypair pubkey against a real home", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    const home = await AstridHome.open(root);
    const key = await KeyPair.loadOrCreate(home.runtimeKeyPath);
    const store = await SqliteStore.open(home.statePath);
    const log = new AuditLog(store, { signer: key });
    for (let i = 0; i < 5; i++) {
      await log.append({
        principal: i < 3 ? "default" : "alice",
        action: "fs.write",
        resource: `workspace://f${i}.txt`,
        decision: i === 1 ? "denied" : "allowed",
        reason: i === 1 ? "the human said no" : "allowed by mode",
        layer: i === 1 ? "approval" : "policy",
        rule: i === 1 ? "" : "mode:autonomous",
        decider: i === 1 ? "human" : "mode",
      });
    }
    await store.close();

    await t.step("--version and --help", async () => {
      const v = await astrid(root, "--version");
      assert.equal(v.code, 0);
      assert.match(v.stdout, /^astrid \d+\.\d+\.\d+/);
      const h = await astrid(root, "--help");
      assert.match(h.stdout, /audit/);
    });
    await t.step("an unknown command is a usage error (exit 2)", async () => {
      const r = await astrid(root, "frobnicate");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /Unknown command "frobnicate"/);
    });
    await t.step("verify: every chain ok", async () => {
      const r = await astrid(root, "audit", "verify");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ok\s+alice: 2 entries verified/);
      assert.match(r.stdout, /ok\s+default: 3 entries verified/);
    });
    await t.step("verify with the public key alone", async () => {
      const pub = await astrid(root, "keypair", "pubkey");
      assert.equal(pub.stdout.trim(), key.publicKeyHex);
      const r = await astrid(
        root,
        "audit",
        "verify",
        "--principal",
        "default",
        "--pubkey",
        pub.stdout.trim(),
      );
      assert.equal(r.code, 0, r.stderr);
      const ssh = await astrid(root, "keypair", "pubkey", "--format", "openssh");
      assert.match(ssh.stdout, /^ssh-ed25519 [A-Za-z0-9+/=]+ astrid-runtime/);
    });
    await t.step("show: names layer, decider and rule; --json is one entry per line", async () => {
      const r = await astrid(root, "audit", "show");
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /denied\s+approval\/human\s+fs.write workspace:\/\/f1.txt\s+the human said no/,
      );
      assert.match(r.stdout, /allowed\s+policy\/mode\[mode:autonomous\]/);
      const j = await astrid(
        root,
        "audit",
        "show",
        "--principal",
        "alice",
        "--json",
        "--limit",
        "1",
      );
      const lines = j.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines.length, 1);
      assert.equal(lines[0].seq, 2);
      assert.equal(lines[0].principal, "alice");
    });
    await t.step("bad flags are usage errors naming the flag", async () => {
      const r = await astrid(root, "audit", "show", "--limit", "zero");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /Invalid --limit "zero"/);
      const s = await astrid(root, "audit", "show", "--since", "yesterday-ish");
      assert.equal(s.code, 2);
      assert.match(s.stderr, /Invalid --since "yesterday-ish"/);
    });
    await t.step("verify: a tampered entry fails with exit 1 and is named", async () => {
      const s = await SqliteStore.open(home.statePath);
      const ns = auditNamespace("default");
      const k = `e/${String(2).padStart(16, "0")}`;
      const rec = (await s.get(ns, k))!;
      rec[40] ^= 0xff;
      await s.set(ns, k, rec);
      await s.close();
      const r = await astrid(root, "audit", "verify");
      assert.equal(r.code, 1);
      assert.match(r.stdout, /BROKEN\s+default: entry 2 of "default" has an invalid signature/);
      assert.match(r.stdout, /ok\s+alice/);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("astrid audit verify on a fresh home says there is nothing to verify", async () => {
  const root = join(await Deno.makeTempDir(), "fresh");
  try {
    const r = await astrid(root, "audit", "verify");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /No audit chains yet/);
  } finally {
    await Deno.remove(join(root, ".."), { recursive: true });
  }
});
