/**
 * Proves `astrid keypair generate|list|show|pubkey|delete` as an operator runs them: the real
 * entry point against a temporary ASTRID_HOME — operator keys beside the runtime key, 0600
 * seed files, the OpenSSH form and fingerprint, and that deleting the runtime key is refused
 * without `--force` (and while a daemon runs), prints the old public key, and that audit chains
 * signed before then verify with that key alone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog } from "../kernel/audit/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

async function astrid(home: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, MAIN, ...args],
    env: { ASTRID_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("astrid keypair manages the runtime key and operator keys", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-keys-" });
  try {
    await t.step("an empty home has no keys", async () => {
      const r = await astrid(root, "keypair", "list");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /No keys yet/);
    });
    let runtimePub = "";
    await t.step("generate makes the runtime key, then operator keys by name", async () => {
      let r = await astrid(root, "keypair", "generate");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Generated the runtime key at .*keys\/runtime\.key/);
      runtimePub = r.stdout.trim().split("\n")[1];
      assert.match(runtimePub, /^[0-9a-f]{64}$/);
      r = await astrid(root, "keypair", "generate", "release");
      assert.equal(r.code, 0, r.stderr);
      const info = await Deno.stat(join(root, "keys", "release.key"));
      assert.equal(info.mode! & 0o777, 0o600);
      assert.equal(info.size, 32);
      r = await astrid(root, "keypair", "generate", "release");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Key "release" already exists .*pass --force to replace it/);
      r = await astrid(root, "keypair", "generate", "Bad Name");
      assert.equal(r.code, 2);
    });
    await t.step("list and list --json", async () => {
      const r = await astrid(root, "keypair", "list");
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n").map((l) => l.split(/\s+/));
      assert.deepEqual(lines.map((l) => l.slice(0, 2)), [
        ["NAME", "KIND"],
        ["runtime", "runtime"],
        ["release", "operator"],
      ]);
      assert.equal(lines[1][2], runtimePub);
      const j = JSON.parse((await astrid(root, "keypair", "list", "--json")).stdout);
      assert.deepEqual(j.map((k: { name: string; mode: string }) => [k.name, k.mode]), [
        ["runtime", "0600"],
        ["release", "0600"],
      ]);
    });
    await t.step("show and pubkey print the same key in every form", async () => {
      const key = await KeyPair.load(join(root, "keys", "release.key"));
      const show = await astrid(root, "keypair", "show", "release");
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, new RegExp(`public key:  ${key.publicKeyHex}`));
      assert.match(show.stdout, /fingerprint: SHA256:[A-Za-z0-9+/]{43}$/m);
      const hex = await astrid(root, "keypair", "pubkey", "release");
      assert.equal(hex.stdout.trim(), key.publicKeyHex);
      const ssh = await astrid(root, "keypair", "pubkey", "release", "--format", "openssh");
      assert.match(ssh.stdout, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]+ astrid-release$/m);
      assert.match(
        show.stdout,
        new RegExp(`openssh:     ${ssh.stdout.trim().replaceAll("+", "\\+")}`),
      );
      const none = await astrid(root, "keypair", "show", "nope");
      assert.equal(none.code, 1);
      assert.match(none.stderr, /No key "nope"/);
    });
    await t.step("delete an operator key needs --yes without a terminal", async () => {
      let r = await astrid(root, "keypair", "delete", "release");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /needs confirmation: pass --yes/);
      r = await astrid(root, "keypair", "delete", "release", "--yes");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await Deno.lstat(join(root, "keys", "release.key")).then(() => 1, () => 0), 0);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("astrid keypair delete runtime: refused, then forced; old chains verify with the printed key", async (t) => {
  // Short home under /tmp: the daemon's socket path must fit sun_path.
  const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "akr" });
  try {
    const home = await AstridHome.open(root);
    const key = await KeyPair.loadOrCreate(home.runtimeKeyPath);
    const store = await SqliteStore.open(home.statePath);
    const log = new AuditLog(store, { signer: key });
    for (let i = 0; i < 3; i++) {
      await log.append({
        principal: "default",
        action: "fs.write",
        resource: `workspace://f${i}`,
        decision: "allowed",
        reason: "test",
        layer: "policy",
        rule: "mode:autonomous",
        decider: "mode",
      });
    }
    await store.close();

    await t.step("without --force it is refused", async () => {
      const r = await astrid(root, "keypair", "delete", "runtime");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Refusing to delete the runtime key: .*pass --force/);
    });
    await t.step("while a daemon runs it is refused even with --force", async () => {
      const start = await astrid(root, "start");
      assert.equal(start.code, 0, start.stderr);
      try {
        const r = await astrid(root, "keypair", "delete", "runtime", "--force");
        assert.equal(r.code, 1);
        assert.match(r.stderr, /The daemon \(PID \d+\) is using the runtime key: stop it first/);
      } finally {
        await astrid(root, "stop");
      }
    });
    await t.step("--force prints the old public key and deletes the file", async () => {
      const r = await astrid(root, "keypair", "delete", "runtime", "--force");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`Its public key is:\\n  ${key.publicKeyHex}\\n`));
      assert.match(r.stderr, /verify only with it \(astrid audit verify --pubkey <key>\)/);
      assert.equal(await Deno.lstat(home.runtimeKeyPath).then(() => 1, () => 0), 0);
    });
    await t.step(
      "a new runtime key does not verify the old chain; the printed key does",
      async () => {
        const gen = await astrid(root, "keypair", "generate");
        assert.equal(gen.code, 0, gen.stderr);
        const fresh = await astrid(root, "audit", "verify");
        assert.equal(fresh.code, 1);
        assert.match(fresh.stdout, /BROKEN\s+default/);
        const old = await astrid(root, "audit", "verify", "--pubkey", key.publicKeyHex);
        assert.equal(old.code, 0, old.stdout + old.stderr);
        assert.match(old.stdout, /ok\s+default: \d+ entries verified/); // ours and the daemon's
      },
    );
  } finally {
    await astrid(root, "stop");
    await Deno.remove(root, { recursive: true });
  }
});
