/**
 * Proves `astrid capsule install|list|tree|update|remove` as an operator runs them: the real
 * entry point in child processes against a temporary ASTRID_HOME, installing `.capsule`
 * archives of tiny WAT-built modules — the content-addressed store, install records, `[env]`
 * values from flags (and from a hidden prompt in a real terminal under tmux) where `get_config`
 * reads them, export-conflict
 * refusal without `--yes`, dependents refusal, binary collection on remove and update, the
 * workspace scope, and a reload asked of a running daemon.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import wabtInit from "wabt";
import { EnvFileConfig, envFilePath } from "../host_abi/mod.ts";
import { parseManifest, writeArchive } from "../kernel/capsule/mod.ts";
import { blake3Hex } from "../kernel/crypto/mod.ts";
import { astridShellCommand, runAstrid } from "./fixtures/run_astrid.ts";
import { hasTmux, TmuxTerminal } from "./fixtures/tmux_terminal.ts";

const wabt = await wabtInit();
const enc = new TextEncoder();

function wasm(tag: string): Uint8Array {
  const mod = wabt.parseWat("t.wat", `(module (memory 1) (data (i32.const 0) "${tag}"))`);
  try {
    return new Uint8Array(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** Writes a capsule directory `<root>/<name>/` with `Capsule.toml` and `dist/<name>.capsule`. */
async function capsule(
  root: string,
  name: string,
  version: string,
  extra = "",
): Promise<{ dir: string; archive: string; hash: string }> {
  const dir = join(root, name);
  await Deno.mkdir(join(dir, "dist"), { recursive: true });
  const manifest = `[package]\nname = "${name}"\nversion = "${version}"\n\n[wasm]\n${extra}`;
  const module = wasm(`${name}@${version}`);
  await Deno.writeTextFile(join(dir, "Capsule.toml"), manifest);
  const archive = join(dir, "dist", `${name}.capsule`);
  await Deno.writeFile(
    archive,
    await writeArchive([
      { path: "Capsule.toml", data: enc.encode(manifest) },
      { path: `${name}.wasm`, data: module },
    ]),
  );
  return { dir, archive, hash: `blake3:${blake3Hex(module)}` };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

const binFile = (home: string, hash: string) => join(home, "bin", `${hash.slice(7)}.wasm`);
const record = (home: string, name: string, principal = "default") =>
  join(home, "home", principal, ".local", "capsules", name);

const LLM_A = `\n[exports]\n"astrid:llm" = "1.0.0"\n\n[env]\n` +
  `API_KEY = { type = "secret", required = true, description = "Provider key" }\n` +
  `REGION = { type = "select", options = ["eu", "us"], default = "eu" }\n`;
const LLM_B = `\n[exports]\n"astrid:llm" = "1.1.0"\n`;
const ORCH =
  `\n[imports]\n"astrid:llm" = "^1.0"\n\n[[tool]]\nname = "greet"\ndescription = "Greets"\n` +
  `\n[capabilities]\nkv = true\nfs_read = ["workspace://"]\n`;

Deno.test("astrid capsule install/list/tree/update/remove against a real home", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-cap-" });
  const home = join(root, "home");
  const src = join(root, "src");
  try {
    const a = await capsule(src, "llm-a", "1.0.0", LLM_A);
    const b = await capsule(src, "llm-b", "1.1.0", LLM_B);
    const orch = await capsule(src, "orch", "0.1.0", ORCH);

    await t.step(
      "a required [env] field without --env is refused before anything is written",
      async () => {
        const r = await runAstrid(home, ["capsule", "install", a.archive]);
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          /Capsule "llm-a" needs a value for required \[env\] field API_KEY \(Provider key\): pass --env API_KEY=VALUE \(no terminal to ask on\)/,
        );
        assert.equal(await exists(record(home, "llm-a")), false);
      },
    );
    await t.step("an unknown --env field is a usage error", async () => {
      const r = await runAstrid(home, ["capsule", "install", a.archive, "--env", "NOPE=1"]);
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /capsule "llm-a" has no such \[env\] field \(fields: API_KEY, REGION\)/,
      );
    });
    await t.step(
      "install an archive: record, pinned hash, content-addressed binary, env 0600",
      async () => {
        const r = await runAstrid(home, ["capsule", "install", a.archive, "--env", "API_KEY=sk-a"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^Installed llm-a 1\.0\.0 \([0-9a-f]{12}\) for principal default$/m);
        assert.match(r.stdout, /No daemon is running: capsules load when it next starts/);
        const meta = JSON.parse(await Deno.readTextFile(join(record(home, "llm-a"), "meta.json")));
        assert.equal(meta.wasm_hash, a.hash, "the hash is pinned from the module's own bytes");
        assert.equal(meta.source, a.archive);
        assert.ok(await exists(binFile(home, a.hash)));
        const envFile = join(home, "home", "default", ".config", "env", "llm-a.env.json");
        assert.equal((await Deno.stat(envFile)).mode! & 0o777, 0o600);
        assert.deepEqual(JSON.parse(await Deno.readTextFile(envFile)), { API_KEY: "sk-a" });
      },
    );
    await t.step("get_config reads the values install stored", async () => {
      const manifest = parseManifest(await Deno.readTextFile(join(a.dir, "Capsule.toml")), {
        file: "Capsule.toml",
      });
      const config = new EnvFileConfig(envFilePath(home, "default", "llm-a"), manifest.env);
      assert.equal(await config.secret("API_KEY"), "sk-a");
      assert.equal(await config.get("REGION"), "eu", "a default stays in the manifest");
    });
    await t.step("installing the same archive again changes nothing", async () => {
      const r = await runAstrid(home, ["capsule", "install", a.archive]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /llm-a 1\.0\.0 \([0-9a-f]{12}\) is already installed/);
    });
    await t.step("install a capsule directory (its dist/<name>.capsule)", async () => {
      const r = await runAstrid(home, ["capsule", "install", orch.dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Installed orch 0\.1\.0/);
    });
    await t.step("list, list --verbose and list --json", async () => {
      const r = await runAstrid(home, ["capsule", "list"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.split(/\s+/)), [
        ["NAME", "VERSION", "HASH", "SCOPE"],
        ["llm-a", "1.0.0", a.hash.slice(7, 19), "user"],
        ["orch", "0.1.0", orch.hash.slice(7, 19), "user"],
      ]);
      const v = await runAstrid(home, ["capsule", "list", "--verbose"]);
      assert.match(v.stdout, /capabilities: fs_read=workspace:\/\/ kv/);
      assert.match(v.stdout, /env: API_KEY \(secret, required\), REGION \(select\)/);
      assert.ok(!v.stdout.includes("sk-a"), "values, secrets above all, are never listed");
      const j = JSON.parse((await runAstrid(home, ["capsule", "list", "--json"])).stdout);
      assert.deepEqual(j.capsules.map((c: { name: string }) => c.name), ["llm-a", "orch"]);
      assert.equal(j.capsules[0].wasm_hash, a.hash);
    });
    await t.step("tree draws imports and exports", async () => {
      const r = await runAstrid(home, ["capsule", "tree"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout,
        [
          "llm-a 1.0.0",
          "└─ exports astrid:llm 1.0.0 → orch",
          "orch 0.1.0",
          "├─ imports astrid:llm ^1.0 ← llm-a 1.0.0",
          "└─ exports tool:greet 0.1.0",
          "",
        ].join("\n"),
      );
    });
    await t.step("an export conflict is refused without --yes", async () => {
      const r = await runAstrid(home, ["capsule", "install", b.archive]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /Capsule "llm-b" exports what installed capsules already export: llm-a \(astrid:llm\); run again with --yes to replace them/,
      );
      assert.ok(await exists(record(home, "llm-a")));
      assert.equal(await exists(record(home, "llm-b")), false);
    });
    await t.step(
      "with --yes the conflicting capsule is replaced and its binary collected",
      async () => {
        const r = await runAstrid(home, ["capsule", "install", b.archive, "--yes"]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Removed llm-a 1\.0\.0 \(replaced by llm-b\); deleted its binary/);
        assert.equal(await exists(record(home, "llm-a")), false);
        assert.equal(await exists(binFile(home, a.hash)), false);
        assert.equal(
          await exists(join(home, "home", "default", ".config", "env", "llm-a.env.json")),
          false,
        );
      },
    );
    await t.step("remove refuses while a dependent needs what only it provides", async () => {
      const r = await runAstrid(home, ["capsule", "remove", "llm-b"]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /Cannot remove "llm-b": orch needs astrid:llm \^1\.0 from it; remove the dependents first, or pass --force/,
      );
      assert.ok(await exists(record(home, "llm-b")));
    });
    await t.step("remove --force removes it and its binary", async () => {
      const r = await runAstrid(home, ["capsule", "remove", "llm-b", "--force"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /warning: Removing llm-b anyway: orch needs astrid:llm/);
      assert.match(r.stdout, new RegExp(`Deleted binary ${b.hash} \\(no other install uses it\\)`));
      assert.equal(await exists(binFile(home, b.hash)), false);
      const tree = await runAstrid(home, ["capsule", "tree"]);
      assert.match(tree.stdout, /imports astrid:llm \^1\.0 ← \(none\)/);
      assert.match(tree.stdout, /BLOCKED: import "astrid:llm"/);
    });
    await t.step("update reinstalls from the recorded source when it changed", async () => {
      const same = await runAstrid(home, ["capsule", "update"]);
      assert.equal(same.code, 0, same.stderr);
      assert.match(same.stdout, /^orch 0\.1\.0: up to date$/m);
      const next = await capsule(src, "orch", "0.2.0", ORCH);
      const r = await runAstrid(home, ["capsule", "update", "orch"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^orch 0\.1\.0 → 0\.2\.0: updated/m);
      assert.match(r.stdout, /deleted the old binary/);
      assert.equal(await exists(binFile(home, orch.hash)), false);
      assert.ok(await exists(binFile(home, next.hash)));
      const nope = await runAstrid(home, ["capsule", "update", "nope"]);
      assert.equal(nope.code, 1);
      assert.match(nope.stderr, /Capsule "nope" is not installed for principal default/);
    });
    await t.step("update reports a source that is gone", async () => {
      await Deno.remove(join(src, "orch"), { recursive: true });
      const r = await runAstrid(home, ["capsule", "update"]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /orch 0\.2\.0: FAILED: Cannot install from ".*orch": no such file or directory/,
      );
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("astrid capsule remove keeps a binary another principal or workspace still uses", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-gc-" });
  const home = join(root, "home");
  const ws = join(root, "project");
  try {
    const c = await capsule(join(root, "src"), "shared", "1.0.0");
    await Deno.mkdir(join(ws, ".astrid"), { recursive: true });
    await t.step("installed for two principals and a workspace: one binary", async () => {
      for (const args of [[], ["--principal", "alice"], ["--workspace"]]) {
        const r = await runAstrid(home, ["capsule", "install", c.archive, ...args], { cwd: ws });
        assert.equal(r.code, 0, r.stderr);
      }
      assert.deepEqual((await Array.fromAsync(Deno.readDir(join(home, "bin")))).length, 1);
      assert.ok(await exists(join(ws, ".astrid", "capsules", "shared", "meta.json")));
      const list = await runAstrid(home, ["capsule", "list", "--json"], { cwd: ws });
      const j = JSON.parse(list.stdout);
      assert.deepEqual(j.capsules.map((x: { scope: string }) => x.scope), ["user"]);
      assert.deepEqual(j.shadowed.map((x: { scope: string }) => x.scope), ["workspace"]);
    });
    await t.step("removing all but one keeps it; removing the last deletes it", async () => {
      let r = await runAstrid(home, ["capsule", "remove", "shared"], { cwd: ws });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Kept binary [0-9a-f]{12}: 2 other installs use it/);
      r = await runAstrid(home, ["capsule", "remove", "shared", "--principal", "alice"], {
        cwd: ws,
      });
      assert.match(r.stdout, /Kept binary [0-9a-f]{12}: 1 other install use it/);
      assert.ok(await exists(binFile(home, c.hash)));
      r = await runAstrid(home, ["capsule", "remove", "shared", "--workspace"], { cwd: ws });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Deleted binary/);
      assert.equal(await exists(binFile(home, c.hash)), false);
    });
    await t.step(
      "a source directory without an archive is built first (astrid build)",
      async () => {
        const dir = join(root, "unbuilt");
        await Deno.mkdir(join(dir, "static"), { recursive: true });
        await Deno.writeTextFile(
          join(dir, "Capsule.toml"),
          `[package]\nname = "unbuilt"\nversion = "0.1.0"\n\n[static]\ncontext_files = ["static/a.md"]\n`,
        );
        await Deno.writeTextFile(join(dir, "static", "a.md"), "# context\n");
        const r = await runAstrid(home, ["capsule", "install", dir]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /Building .*unbuilt \(astrid build\)/);
        assert.match(r.stdout, /Installed unbuilt 0\.1\.0 for principal default/);
        const rec = record(home, "unbuilt");
        assert.equal(await Deno.readTextFile(join(rec, "static", "a.md")), "# context\n");
      },
    );
    await t.step("a remote source is refused offline", async () => {
      const r = await runAstrid(home, ["capsule", "install", "@org/thing"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /remote sources are not supported offline/);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("astrid capsule install asks a running daemon to reload", async () => {
  // Short home under /tmp: the socket path must fit sun_path.
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "acr" });
  try {
    const c = await capsule(join(home, "src"), "hello", "0.1.0");
    const start = await runAstrid(home, ["start"]);
    assert.equal(start.code, 0, start.stderr);
    const r = await runAstrid(home, ["capsule", "install", c.archive]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Daemon reloaded: \d+ capsules? loaded/);
  } finally {
    await runAstrid(home, ["stop"]);
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test({
  name: "astrid capsule install asks [env] in a terminal, hiding the secret (tmux)",
  ignore: !hasTmux, // needs tmux for a real terminal; .ci/run installs it
  async fn() {
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "acp" });
    const term = new TmuxTerminal();
    try {
      const a = await capsule(join(root, "src"), "llm-a", "1.0.0", LLM_A);
      const home = join(root, "home");
      const cmd = `${astridShellCommand()} capsule install '${a.archive}'`;
      await term.start(
        `env ASTRID_HOME='${home}' NO_COLOR=1 ${cmd}; echo EXIT=$?; sleep 60`,
      );
      await term.waitFor("API_KEY (Provider key) (hidden):");
      await term.send("sk-typed-secret", "Enter");
      await term.waitFor("Choose 1-2 [eu]:");
      await term.send("2", "Enter");
      const done = await term.waitFor("EXIT=");
      assert.match(done, /EXIT=0/);
      assert.ok(!done.includes("sk-typed-secret"), "the secret is never echoed");
      const env = JSON.parse(
        await Deno.readTextFile(join(home, "home", "default", ".config", "env", "llm-a.env.json")),
      );
      assert.deepEqual(env, { API_KEY: "sk-typed-secret", REGION: "us" });
    } finally {
      await term.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
