/**
 * Proves `astrid init` as an operator runs it: the real entry point against a temporary
 * ASTRID_HOME and a test distro of two tiny WAT-built capsules — groups and variables from
 * flags, progress lines, `Distro.lock` pinning the BLAKE3 of each installed module, an
 * idempotent re-run that leaves the lock byte-identical, a lock mismatch reported (and repaired
 * with `--yes`), a changed source refused without `--update`, and `Distro.toml` errors located
 * by file and line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import wabtInit from "wabt";
import { writeArchive } from "../kernel/capsule/mod.ts";
import { blake3Hex } from "../kernel/crypto/mod.ts";
import { type AstridRun, astridShellCommand, runAstrid } from "./fixtures/run_astrid.ts";
import { hasTmux, TmuxTerminal } from "./fixtures/tmux_terminal.ts";

const wabt = await wabtInit();
const enc = new TextEncoder();

/** Runs `astrid <args>` against `home` (a child under the shared hard deadline). */
function astrid(home: string, ...args: string[]): Promise<AstridRun> {
  return runAstrid(home, args);
}

/** Writes `<root>/<name>/` with `Capsule.toml` and `dist/<name>.capsule`; returns the module hash. */
async function capsule(root: string, name: string, version: string, extra = ""): Promise<string> {
  const dir = join(root, name);
  await Deno.mkdir(join(dir, "dist"), { recursive: true });
  const manifest = `[package]\nname = "${name}"\nversion = "${version}"\n\n[wasm]\n${extra}`;
  const mod = wabt.parseWat(
    "t.wat",
    `(module (memory 1) (data (i32.const 0) "${name}@${version}"))`,
  );
  const wasm = new Uint8Array(mod.toBinary({}).buffer);
  mod.destroy();
  await Deno.writeTextFile(join(dir, "Capsule.toml"), manifest);
  await Deno.writeFile(
    join(dir, "dist", `${name}.capsule`),
    await writeArchive([
      { path: "Capsule.toml", data: enc.encode(manifest) },
      { path: `${name}.wasm`, data: wasm },
    ]),
  );
  return `blake3:${blake3Hex(wasm)}`;
}

const PROV_ENV = `\n[exports]\n"astrid:llm" = "1.0.0"\n\n[env]\n` +
  `API_KEY = { type = "secret", required = true }\nMODEL = { type = "text", default = "small" }\n`;

const DISTRO = `[distro]
name = "tiny"
version = "0.1.0"
description = "Two tiny capsules"

[variables]
api_key = { description = "Provider key", secret = true, required = true }
model = { description = "Model", default = "large" }

[[group]]
name = "prov"
description = "The provider"
default = true

[[capsule]]
name = "core"
source = "capsules/core"
version = "0.1.0"

[[capsule]]
name = "prov"
source = "capsules/prov"
version = "^0.1"
group = "prov"
env = { API_KEY = "{{ api_key }}", MODEL = "{{ model }}" }

[branding]
display_name = "Tiny"
tagline = "A test distro"
`;

Deno.test("astrid init installs a distro, pins it in Distro.lock and re-runs idempotently", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-init-" });
  const home = join(root, "home");
  const distro = join(root, "tiny");
  const lockPath = join(home, "etc", "Distro.lock");
  try {
    await Deno.mkdir(distro);
    await Deno.writeTextFile(join(distro, "Distro.toml"), DISTRO);
    const coreHash = await capsule(join(distro, "capsules"), "core", "0.1.0");
    const provHash = await capsule(join(distro, "capsules"), "prov", "0.1.0", PROV_ENV);

    await t.step("a required variable without --var is refused before installing", async () => {
      const r = await astrid(home, "init", "--distro", distro);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^Tiny 0\.1\.0 — A test distro$/m);
      assert.match(
        r.stderr,
        /Distro "tiny" needs api_key \(Provider key\): pass --var api_key=VALUE \(no terminal to ask on\)/,
      );
      assert.equal(await Deno.lstat(lockPath).then(() => 1, () => 0), 0);
    });
    await t.step("an unknown group or variable is refused", async () => {
      const g = await astrid(home, "init", "--distro", distro, "--group", "nope");
      assert.equal(g.code, 1);
      assert.match(g.stderr, /Distro "tiny" has no group "nope": choose from prov/);
      const v = await astrid(home, "init", "--distro", distro, "--var", "nope=1");
      assert.equal(v.code, 1);
      assert.match(v.stderr, /has no variable "nope": its variables are api_key, model/);
    });
    await t.step("first run: progress lines, records, env from templates, the lock", async () => {
      const r = await astrid(home, "init", "--distro", distro, "--var", "api_key=sk-1");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Groups: prov$/m);
      assert.match(r.stdout, /^\[1\/2\] installing core 0\.1\.0 … ok$/m);
      assert.match(r.stdout, /^\[2\/2\] installing prov 0\.1\.0 … ok$/m);
      assert.match(r.stdout, /Wrote .*etc\/Distro\.lock \(2 capsules pinned\)/);
      const lock = await Deno.readTextFile(lockPath);
      assert.match(lock, new RegExp(`name = "core"\\n[^\\[]*wasm_hash = "${coreHash}"`));
      assert.match(lock, new RegExp(`name = "prov"\\n[^\\[]*wasm_hash = "${provHash}"`));
      assert.match(lock, /principal = "default"/);
      const env = JSON.parse(
        await Deno.readTextFile(join(home, "home", "default", ".config", "env", "prov.env.json")),
      );
      assert.deepEqual(env, { API_KEY: "sk-1", MODEL: "large" });
    });
    await t.step(
      "a re-run skips identical capsules and leaves the lock byte-identical",
      async () => {
        const before = await Deno.readTextFile(lockPath);
        const r = await astrid(home, "init", "--distro", join(distro, "Distro.toml"));
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^\[1\/2\] installing core 0\.1\.0 … unchanged$/m);
        assert.match(r.stdout, /^\[2\/2\] installing prov 0\.1\.0 … unchanged$/m);
        assert.match(r.stdout, /Distro\.lock is up to date/);
        assert.equal(await Deno.readTextFile(lockPath), before);
      },
    );
    await t.step("an installed capsule that differs from the lock is reported", async () => {
      const other = join(root, "other");
      await capsule(other, "prov", "0.1.9", PROV_ENV);
      const inst = await astrid(home, "capsule", "install", join(other, "prov"));
      assert.equal(inst.code, 0, inst.stderr);
      const before = await Deno.readTextFile(lockPath);
      const r = await astrid(home, "init", "--distro", distro);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `\\[2/2\\] installing prov 0\\.1\\.9 … LOCK MISMATCH: installed 0\\.1\\.9 \\(blake3:[0-9a-f]{64}\\) differs from Distro\\.lock \\(${provHash}\\)`,
        ),
      );
      assert.match(
        r.stderr,
        /Distro\.lock not written: 1 lock mismatch left as installed \(rerun with --yes/,
      );
      assert.equal(await Deno.readTextFile(lockPath), before);
    });
    await t.step("--yes reinstalls the locked version", async () => {
      const r = await astrid(home, "init", "--distro", distro, "--yes");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Reinstalling the locked prov \(--yes\)/);
      assert.match(r.stdout, /\[2\/2\] installing prov 0\.1\.0 … updated \(0\.1\.9 → 0\.1\.0\)/);
      const meta = JSON.parse(
        await Deno.readTextFile(
          join(home, "home", "default", ".local", "capsules", "prov", "meta.json"),
        ),
      );
      assert.equal(meta.wasm_hash, provHash);
    });
    await t.step("a source that changed since the lock needs --update", async () => {
      await capsule(join(distro, "capsules"), "core", "0.1.0", "# rebuilt\n"); // new manifest
      const r = await astrid(home, "init", "--distro", distro);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /core … FAILED: Capsule "core" changed at its source since Distro\.lock: its manifest hashes to/,
      );
      const up = await astrid(home, "init", "--distro", distro, "--update");
      assert.equal(up.code, 0, up.stderr);
      assert.match(
        up.stdout,
        /\[1\/2\] installing core 0\.1\.0 … updated \(a new build of 0\.1\.0\)/,
      );
      assert.match(up.stdout, /Wrote .*Distro\.lock/);
    });
    await t.step("deselecting a group leaves its capsules installed, with a note", async () => {
      const r = await astrid(home, "init", "--distro", distro, "--group", "");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Groups: none$/m);
      assert.match(
        r.stdout,
        /note: prov was part of this distro's last install but not of this selection/,
      );
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("astrid init reports Distro.toml errors with file:line and refuses remote sources", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "astrid-init-bad-" });
  const home = join(root, "home");
  try {
    await t.step("every problem, located", async () => {
      const file = join(root, "bad", "Distro.toml");
      await Deno.mkdir(join(root, "bad"));
      await Deno.writeTextFile(
        file,
        `[distro]\nname = "bad"\nversion = "0.1.0"\nfoo = 1\n\n[[capsule]]\nname = "a"\nsource = "a"\nversion = "0.1.0"\ngroup = "llm"\n`,
      );
      const r = await astrid(home, "init", "--distro", file);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`Invalid distro manifest "${file}": 2 problems`));
      assert.match(
        r.stderr,
        new RegExp(`${file}:4: distro\\.foo: unknown key "foo" in \\[distro\\]`),
      );
      assert.match(
        r.stderr,
        new RegExp(`${file}:10: capsule\\[0\\]\\.group: group "llm" is not defined`),
      );
    });
    await t.step("a remote capsule source is recorded but refused offline", async () => {
      const file = join(root, "remote", "Distro.toml");
      await Deno.mkdir(join(root, "remote"));
      await Deno.writeTextFile(
        file,
        `[distro]\nname = "remote"\nversion = "0.1.0"\n\n[[capsule]]\nname = "a"\nsource = "@org/a"\nversion = "0.1.0"\n`,
      );
      const r = await astrid(home, "init", "--distro", file);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /\[1\/1\] installing a … FAILED: .*remote source "@org\/a": remote sources are recorded but not fetched offline/,
      );
      const d = await astrid(home, "init", "--distro", "@org/distro");
      assert.match(d.stderr, /remote distros are not supported offline/);
    });
    await t.step("a distro name is looked up under distros/ of the program", async () => {
      const r = await astrid(home, "init", "--distro", "no-such-distro");
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /No distro named "no-such-distro" in .*distros\/: known distros are .*astralis/,
      );
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "astrid init in a terminal: groups multi-select and a hidden variable (tmux)",
  ignore: !hasTmux, // needs tmux for a real terminal; .ci/run installs it
  async fn() {
    const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "aip" });
    const term = new TmuxTerminal();
    try {
      const distro = join(root, "tiny");
      await Deno.mkdir(distro);
      await Deno.writeTextFile(
        join(distro, "Distro.toml"),
        DISTRO + `\n[[group]]\nname = "extra"\ndescription = "Nothing much"\ncapsules = ["core"]\n`,
      );
      await capsule(join(distro, "capsules"), "core", "0.1.0");
      await capsule(join(distro, "capsules"), "prov", "0.1.0", PROV_ENV);
      const home = join(root, "home");
      const cmd = `${astridShellCommand()} init --distro '${distro}'`;
      await term.start(
        `env ASTRID_HOME='${home}' NO_COLOR=1 ${cmd}; echo EXIT=$?; sleep 60`,
      );
      await term.waitFor("2) [ ] extra — Nothing much");
      await term.send("prov, extra", "Enter");
      await term.waitFor("api_key (Provider key) (hidden):");
      await term.send("sk-from-tty", "Enter");
      await term.waitFor("model (Model) [large]:");
      await term.send("Enter");
      const done = await term.waitFor("EXIT=");
      assert.match(done, /Groups: prov, extra/);
      assert.match(done, /\[2\/2\] installing prov 0\.1\.0 … ok/);
      assert.match(done, /EXIT=0/);
      assert.ok(!done.includes("sk-from-tty"), "the secret is never echoed");
      const env = JSON.parse(
        await Deno.readTextFile(join(home, "home", "default", ".config", "env", "prov.env.json")),
      );
      assert.deepEqual(env, { API_KEY: "sk-from-tty", MODEL: "large" });
    } finally {
      await term.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
