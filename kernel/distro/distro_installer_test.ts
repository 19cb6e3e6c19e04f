import assert from "node:assert/strict";
import { join } from "node:path";
import wabtInit from "wabt";
import { readCapsuleEnv, writeArchive } from "../capsule/mod.ts";
import { ManualClock } from "../clock.ts";
import { AstridHome } from "../home/mod.ts";
import { DEFAULT_PRINCIPAL } from "../identity/mod.ts";
import { DistroCode } from "./errors.ts";
import { readDistroLock } from "./distro_lock.ts";
import {
  capsuleEnvPreset,
  findDistro,
  installDistro,
  planDistro,
  resolveDistroSource,
  resolveVariables,
} from "./distro_installer.ts";
import { parseDistro } from "./parse_distro.ts";

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

/** Writes `<root>/capsules/<name>/dist/<name>.capsule`. */
async function capsule(root: string, name: string, version: string, extra = "") {
  const dir = join(root, "capsules", name);
  await Deno.mkdir(join(dir, "dist"), { recursive: true });
  const manifest = `[package]\nname = "${name}"\nversion = "${version}"\n\n[wasm]\n${extra}`;
  await Deno.writeTextFile(join(dir, "Capsule.toml"), manifest);
  const bytes = await writeArchive([
    { path: "Capsule.toml", data: enc.encode(manifest) },
    { path: `${name}.wasm`, data: wasm(`${name}@${version}`) },
  ]);
  await Deno.writeFile(join(dir, "dist", `${name}.capsule`), bytes);
}

const DISTRO = `[distro]
name = "mini"
version = "0.1.0"
source_root = ".."

[variables]
api_key = { description = "API key", secret = true, required = true }
unused = { description = "Only for b" }

[[group]]
name = "a"
default = true

[[group]]
name = "b"

[[capsule]]
name = "core"
source = "capsules/core"
version = "0.1.0"

[[capsule]]
name = "prov-a"
source = "capsules/prov-a"
version = "^0.1"
group = "a"
env = { API_KEY = "{{ api_key }}" }

[[capsule]]
name = "prov-b"
source = "@org/prov-b"
version = "0.1.0"
group = "b"
env = { X = "{{ unused }}" }
`;

Deno.test("planDistro() and resolveVariables() choose capsules and values", async (t) => {
  const d = parseDistro(DISTRO, { file: "/x/distro/Distro.toml" });
  await t.step("defaults select group a; b's variables are not needed", () => {
    const plan = planDistro(d);
    assert.deepEqual(plan.groups, ["a"]);
    assert.deepEqual(plan.capsules.map((c) => c.name), ["core", "prov-a"]);
    assert.deepEqual(plan.variables.map((v) => v.name), ["api_key"]);
    assert.deepEqual(resolveVariables(plan, {}).missing.map((v) => v.name), ["api_key"]);
    assert.deepEqual(resolveVariables(plan, { api_key: "k" }), {
      values: { groups: "a", api_key: "k" },
      missing: [],
    });
  });
  await t.step("the built-in groups variable names the selected groups in file order", () => {
    const both = planDistro(d, { groups: ["b", "a"] });
    assert.equal(resolveVariables(both, { api_key: "k" }).values.groups, "a,b");
    assert.equal(resolveVariables(planDistro(d, { groups: [] }), {}).values.groups, "");
    assert.throws(() => resolveVariables(both, { groups: "x" }), /has no variable "groups"/);
    const routed = parseDistro(
      DISTRO.replace(
        'env = { X = "{{ unused }}" }',
        'env = { X = "{{ unused }}", R = "{{groups}}" }',
      ),
      { file: "/x/distro/Distro.toml" },
    );
    assert.deepEqual(capsuleEnvPreset(routed.capsule[2], { unused: "u", groups: "b" }), {
      X: "u",
      R: "b",
    });
  });
  await t.step("explicit groups replace the defaults; unknown ones are refused", () => {
    assert.deepEqual(planDistro(d, { groups: ["b"] }).capsules.map((c) => c.name), [
      "core",
      "prov-b",
    ]);
    assert.deepEqual(planDistro(d, { groups: [] }).capsules.map((c) => c.name), ["core"]);
    assert.throws(
      () => planDistro(d, { groups: ["c"] }),
      (err: { code?: string; message: string }) =>
        err.code === DistroCode.DISTRO_GROUP_UNKNOWN && /choose from a, b/.test(err.message),
    );
    assert.throws(() => resolveVariables(planDistro(d), { nope: "1" }), /has no variable "nope"/);
  });
  await t.step("sources resolve against source_root; remote ones are refused", () => {
    assert.equal(resolveDistroSource(d, d.capsule[0]), "/x/capsules/core");
    assert.throws(
      () => resolveDistroSource(d, d.capsule[2]),
      (err: { code?: string; message: string }) =>
        err.code === DistroCode.DISTRO_SOURCE_UNSUPPORTED &&
        /not fetched offline/.test(err.message),
    );
  });
});

Deno.test("installDistro() installs, pins, is idempotent and reports lock mismatches", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    const home = await AstridHome.open(join(root, "home"));
    await Deno.mkdir(join(root, "distro"));
    await Deno.writeTextFile(join(root, "distro", "Distro.toml"), DISTRO);
    await capsule(root, "core", "0.1.0");
    await capsule(
      root,
      "prov-a",
      "0.1.0",
      `\n[env]\nAPI_KEY = { type = "secret", required = true }\n`,
    );
    const file = await findDistro(join(root, "distro"), { distrosDir: root });
    const d = parseDistro(await Deno.readTextFile(file), { file });
    const plan = planDistro(d);
    const clock = new ManualClock();
    const base = { home, principal: DEFAULT_PRINCIPAL, clock, variables: { api_key: "sk-9" } };
    const lockPath = join(home.etc, "Distro.lock");

    await t.step("first run installs everything and writes the lock", async () => {
      const seen: string[] = [];
      const r = await installDistro(plan, {
        ...base,
        onProgress: (p) => seen.push(`${p.index}/${p.total} ${p.name} ${p.phase}`),
      });
      assert.ok(r.ok);
      assert.deepEqual(r.outcomes.map((o) => o.status), ["installed", "installed"]);
      assert.deepEqual(seen, [
        "1/2 core start",
        "1/2 core done",
        "2/2 prov-a start",
        "2/2 prov-a done",
      ]);
      assert.ok(r.lockWritten);
      const lock = await readDistroLock(lockPath);
      assert.deepEqual(lock?.capsule.map((c) => c.name), ["core", "prov-a"]);
      assert.match(lock!.capsule[0].wasm_hash!, /^blake3:/);
      assert.deepEqual(
        await readCapsuleEnv(home, { principal: DEFAULT_PRINCIPAL, capsule: "prov-a" }),
        {
          API_KEY: "sk-9",
        },
      );
    });
    await t.step("a re-run changes nothing, the lock stays byte-identical", async () => {
      const before = await Deno.readTextFile(lockPath);
      clock.advance(60_000);
      const r = await installDistro(plan, base);
      assert.deepEqual(r.outcomes.map((o) => o.status), ["unchanged", "unchanged"]);
      assert.equal(r.lockWritten, false);
      assert.equal(await Deno.readTextFile(lockPath), before);
    });
    await t.step("a source that changed since the lock is refused without update", async () => {
      await capsule(root, "core", "0.1.0", "# rebuilt\n");
      const r = await installDistro(plan, base);
      assert.equal(r.ok, false);
      assert.equal(r.outcomes[0].status, "failed");
      assert.match(r.outcomes[0].detail!, /changed at its source since Distro.lock.*--update/);
      const up = await installDistro(plan, { ...base, update: true });
      assert.ok(up.ok);
      assert.deepEqual(up.outcomes.map((o) => o.status), ["updated", "unchanged"]);
      assert.equal(up.outcomes[0].previousVersion, "0.1.0");
    });
    await t.step(
      "an installed capsule that differs from the lock is a reported mismatch",
      async () => {
        // Install another build of prov-a over the locked one, as `astrid capsule install` would.
        const other = join(root, "other");
        await capsule(
          other,
          "prov-a",
          "0.1.5",
          `\n[env]\nAPI_KEY = { type = "secret", required = true }\n`,
        );
        const alt = planDistro(
          parseDistro(DISTRO.replace("capsules/prov-a", "other/capsules/prov-a"), { file }),
        );
        const altRun = await installDistro(alt, { ...base, lockPath: join(root, "other.lock") });
        assert.ok(altRun.ok, altRun.outcomes.map((o) => o.detail).join("; "));
        const r = await installDistro(plan, base);
        assert.equal(r.ok, false);
        assert.equal(r.outcomes[1].status, "mismatch");
        assert.equal(r.mismatches.length, 1);
        assert.equal(r.mismatches[0].repaired, false);
        const fixed = await installDistro(plan, { ...base, confirm: () => Promise.resolve(true) });
        assert.ok(fixed.ok);
        assert.equal(fixed.outcomes[1].status, "updated");
        assert.equal(fixed.mismatches[0].repaired, true);
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
