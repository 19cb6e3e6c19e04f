import assert from "node:assert/strict";
import { join } from "node:path";
import wabtInit from "wabt";
import { ManualClock } from "../clock.ts";
import { AstridHome } from "../home/mod.ts";
import { DEFAULT_PRINCIPAL, principalId } from "../identity/mod.ts";
import { writeArchive } from "./capsule_archive.ts";
import { discoverCapsules, userCapsulesDir } from "./discovery.ts";
import { CapsuleCode } from "./errors.ts";
import {
  capsuleEnvPath,
  effectiveEnv,
  missingEnv,
  parseEnvText,
  readCapsuleEnv,
} from "./install_env.ts";
import {
  binaryReferences,
  dependentsOf,
  exportConflicts,
  installCapsule,
  resolveCapsuleSource,
  uninstallCapsule,
} from "./installer.ts";
import { parseManifest } from "./manifest_parser.ts";

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

function archive(name: string, version: string, extra = "", tag = `${name}@${version}`) {
  const manifest = `[package]\nname = "${name}"\nversion = "${version}"\n\n[wasm]\n${extra}`;
  return writeArchive([
    { path: "Capsule.toml", data: enc.encode(manifest) },
    { path: `${name}.wasm`, data: wasm(tag) },
    { path: "static/README.md", data: enc.encode(`# ${name}\n`) },
  ]);
}

async function withHome(fn: (home: AstridHome, root: string) => Promise<void>) {
  const root = await Deno.makeTempDir();
  try {
    await fn(await AstridHome.open(join(root, "home")), root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const clock = new ManualClock(1_800_000_000_000);
const base = { principal: DEFAULT_PRINCIPAL, scope: "user" as const, clock };

Deno.test("installCapsule() writes a record, stores the module once and is idempotent", async (t) => {
  await withHome(async (home) => {
    const bytes = await archive("hello", "0.1.0");
    const first = await installCapsule(bytes, { ...base, home, source: "/src/hello" });
    await t.step("a new record with meta.json pinning the module's own hash", async () => {
      assert.equal(first.status, "installed");
      const hash = first.record.meta.wasm_hash!;
      assert.match(hash, /^blake3:[0-9a-f]{64}$/);
      assert.equal(first.record.meta.installed_at, new Date(clock.now()).toISOString());
      const stored = await Deno.readFile(join(home.bin, `${hash.slice(7)}.wasm`));
      assert.equal(stored.length > 8, true);
      const dir = join(userCapsulesDir(home, DEFAULT_PRINCIPAL), "hello");
      assert.equal(await Deno.readTextFile(join(dir, "static/README.md")), "# hello\n");
      const found = await discoverCapsules(home, { principal: DEFAULT_PRINCIPAL });
      assert.deepEqual(found.capsules.map((c) => c.name), ["hello"]);
      assert.deepEqual(found.problems, []);
    });
    await t.step("the same archive from the same source is unchanged", async () => {
      const again = await installCapsule(bytes, { ...base, home, source: "/src/hello" });
      assert.equal(again.status, "unchanged");
      const entries = await Array.fromAsync(Deno.readDir(userCapsulesDir(home, DEFAULT_PRINCIPAL)));
      assert.deepEqual(entries.map((e) => e.name), ["hello"], "no staging left behind");
    });
    await t.step("a new version replaces the record", async () => {
      const next = await installCapsule(await archive("hello", "0.2.0"), {
        ...base,
        home,
        source: "/src/hello",
      });
      assert.equal(next.status, "updated");
      assert.equal(next.previous?.version, "0.1.0");
      assert.equal(next.record.meta.version, "0.2.0");
    });
  });
});

Deno.test("installCapsule() refuses a module other than the pinned hash", async () => {
  await withHome(async (home) => {
    await assert.rejects(
      installCapsule(await archive("hello", "0.1.0"), {
        ...base,
        home,
        source: "x",
        expectWasmHash: `blake3:${"0".repeat(64)}`,
      }),
      (err: { code?: string }) => err.code === CapsuleCode.BINARY_HASH_MISMATCH,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(home.bin)), []);
  });
});

Deno.test("installCapsule() checks [env] before writing and stores values 0600", async (t) => {
  await withHome(async (home) => {
    const extra = `\n[env]\nAPI_KEY = { type = "secret", required = true }\n` +
      `REGION = { type = "select", options = ["eu", "us"], default = "eu" }\n` +
      `BLOCKED = { type = "array", default = [] }\n`;
    const bytes = await archive("web", "1.0.0", extra);
    await t.step("a missing required value stops the install", async () => {
      await assert.rejects(
        installCapsule(bytes, { ...base, home, source: "x" }),
        (err: { code?: string; message: string }) =>
          err.code === CapsuleCode.INSTALL_ENV_INVALID && /"API_KEY"/.test(err.message),
      );
      const found = await discoverCapsules(home, { principal: DEFAULT_PRINCIPAL });
      assert.deepEqual(found.capsules, []);
    });
    await t.step("a select value outside its options is refused", async () => {
      await assert.rejects(
        installCapsule(bytes, {
          ...base,
          home,
          source: "x",
          env: { API_KEY: "k", REGION: "mars" },
        }),
        /"REGION" must be one of "eu", "us", got "mars"/,
      );
    });
    await t.step("given values are stored 0600 and kept by a reinstall", async () => {
      await installCapsule(bytes, {
        ...base,
        home,
        source: "x",
        env: { API_KEY: "sk-1", BLOCKED: ["a.com"] },
      });
      const path = capsuleEnvPath(home, { principal: DEFAULT_PRINCIPAL, capsule: "web" });
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      const again = await installCapsule(await archive("web", "1.0.1", extra), {
        ...base,
        home,
        source: "x",
      });
      assert.equal(again.status, "updated");
      const stored = await readCapsuleEnv(home, { principal: DEFAULT_PRINCIPAL, capsule: "web" });
      assert.deepEqual(stored, { API_KEY: "sk-1", BLOCKED: ["a.com"] });
      assert.deepEqual(effectiveEnv(again.record.manifest, stored), {
        API_KEY: "sk-1",
        REGION: "eu",
        BLOCKED: ["a.com"],
      });
    });
    await t.step("missingEnv() and parseEnvText()", () => {
      const m = parseManifest(`[package]\nname = "w"\nversion = "1.0.0"\n${extra}`, { file: "w" });
      assert.deepEqual(missingEnv(m, {}).map((f) => f.name), ["API_KEY"]);
      const arr = m.env.find((f) => f.name === "BLOCKED")!;
      assert.deepEqual(parseEnvText(arr, "a.com, b.com"), ["a.com", "b.com"]);
      assert.deepEqual(parseEnvText(arr, '["x,y"]'), ["x,y"]);
      assert.deepEqual(parseEnvText(arr, ""), []);
    });
  });
});

Deno.test("uninstallCapsule() deletes the binary only when no record references it", async (t) => {
  await withHome(async (home, root) => {
    const bytes = await archive("shared", "1.0.0");
    const alice = principalId("alice");
    const a = await installCapsule(bytes, { ...base, home, source: "x" });
    const ws = join(root, "project");
    await Deno.mkdir(ws);
    await installCapsule(bytes, { ...base, home, principal: alice, source: "x" });
    await installCapsule(bytes, { ...base, home, scope: "workspace", workspace: ws, source: "x" });
    const hash = a.record.meta.wasm_hash!;
    await t.step("three records reference one binary", async () => {
      assert.equal((await binaryReferences(home, hash)).length, 3);
    });
    await t.step("removing one keeps the binary for the others", async () => {
      const r = await uninstallCapsule(home, { ...base, name: "shared" });
      assert.equal(r.binaryRemoved, false);
      assert.equal(r.binaryUsers.length, 2);
      const r2 = await uninstallCapsule(home, { ...base, principal: alice, name: "shared" });
      assert.equal(r2.binaryRemoved, false, "the workspace record still uses it");
    });
    await t.step("removing the last deletes it", async () => {
      const r = await uninstallCapsule(home, {
        ...base,
        scope: "workspace",
        workspace: ws,
        name: "shared",
      });
      assert.equal(r.binaryRemoved, true);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(home.bin)), []);
    });
    await t.step("an unknown name is CAPSULE_NOT_INSTALLED", async () => {
      await assert.rejects(
        uninstallCapsule(home, { ...base, name: "nope" }),
        (err: { code?: string }) => err.code === CapsuleCode.CAPSULE_NOT_INSTALLED,
      );
    });
  });
});

Deno.test("exportConflicts() and dependentsOf() answer what a replace or remove breaks", () => {
  const m = (text: string) => parseManifest(text, { file: "Capsule.toml" });
  const a = m(`[package]\nname = "llm-a"\nversion = "1.0.0"\n[exports]\n"astrid:llm" = "1.0.0"`);
  const b = m(`[package]\nname = "llm-b"\nversion = "1.2.0"\n[exports]\n"astrid:llm" = "1.2.0"`);
  const user = m(`[package]\nname = "orch"\nversion = "1.0.0"\n[imports]\n"astrid:llm" = "^1.0"`);
  const opt = m(
    `[package]\nname = "opt"\nversion = "1.0.0"\n[imports]\n"astrid:llm" = { version = "^1", optional = true }`,
  );
  assert.deepEqual(exportConflicts(b, [a, user]), [
    { capsule: "llm-a", id: "astrid:llm", version: "1.0.0" },
  ]);
  assert.deepEqual(exportConflicts(a, [a]), [], "the same name is a replacement");
  assert.deepEqual(dependentsOf("llm-a", [a, user, opt]), [
    { capsule: "orch", import: "astrid:llm", version: "^1.0" },
  ]);
  assert.deepEqual(dependentsOf("llm-a", [a, b, user]), [], "another provider remains");
});

Deno.test("resolveCapsuleSource() finds dist/<name>.capsule, a source dir, and refuses remote", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "Capsule.toml"),
      `[package]\nname = "x"\nversion = "1.0.0"\n`,
    );
    assert.deepEqual(await resolveCapsuleSource(dir), { kind: "source", dir });
    await Deno.mkdir(join(dir, "dist"));
    await Deno.writeFile(join(dir, "dist", "x.capsule"), await archive("x", "1.0.0"));
    await Deno.writeFile(join(dir, "dist", "old.capsule"), new Uint8Array(1));
    const found = await resolveCapsuleSource(dir);
    assert.equal(found.kind, "archive");
    assert.equal(found.kind === "archive" && found.path, join(dir, "dist", "x.capsule"));
    await assert.rejects(
      resolveCapsuleSource("@org/x"),
      /remote sources are not supported offline/,
    );
    await assert.rejects(resolveCapsuleSource(join(dir, "nope")), /no such file or directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
