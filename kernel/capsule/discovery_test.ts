import assert from "node:assert/strict";
import { join } from "node:path";
import { AstridHome } from "../home/mod.ts";
import { DEFAULT_PRINCIPAL, principalId } from "../identity/mod.ts";
import { BinaryStore } from "./binary_store.ts";
import {
  discoverCapsules,
  readInstalledWasm,
  userCapsulesDir,
  workspaceCapsulesDir,
} from "./discovery.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import {
  type InstallMeta,
  parseInstallMeta,
  readInstallRecord,
  writeInstallRecord,
} from "./install_record.ts";

const WASM = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
const NOW = "2026-01-02T03:04:05.000Z";

function manifest(name: string, version = "0.1.0", wasm = true): string {
  return `[package]\nname = "${name}"\nversion = "${version}"\n${wasm ? "[wasm]\n" : ""}`;
}

function meta(name: string, hash: string | null, version = "0.1.0"): InstallMeta {
  return { name, version, wasm_hash: hash, source: `/tmp/${name}.capsule`, installed_at: NOW };
}

async function withHome(fn: (home: AstridHome, workspace: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    const home = await AstridHome.open(join(root, "astrid"));
    await home.ensurePrincipal(DEFAULT_PRINCIPAL);
    const workspace = join(root, "project");
    await Deno.mkdir(join(workspace, ".astrid", "capsules"), { recursive: true });
    await fn(home, workspace);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function hasCode(expected: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CapsuleError, String(err));
    assert.equal(err.code, expected);
    return true;
  };
}

Deno.test("writeInstallRecord() and readInstallRecord() round-trip and check consistency", async (t) => {
  await withHome(async (home) => {
    const store = new BinaryStore(home.bin);
    const hash = await store.put(WASM);
    const dir = join(userCapsulesDir(home, DEFAULT_PRINCIPAL), "hello");
    await t.step("round trip", async () => {
      await writeInstallRecord(dir, { manifestText: manifest("hello"), meta: meta("hello", hash) });
      const record = await readInstallRecord(dir);
      assert.equal(record.manifest.package.name, "hello");
      assert.deepEqual(record.meta, meta("hello", hash));
    });
    await t.step("a record whose name differs from its directory is refused", async () => {
      await assert.rejects(
        writeInstallRecord(join(dir, "..", "other"), {
          manifestText: manifest("hello"),
          meta: meta("hello", hash),
        }),
        /the manifest names "hello" but the directory is "other"/,
      );
    });
    await t.step("a version mismatch between meta.json and the manifest is refused", async () => {
      await assert.rejects(
        writeInstallRecord(dir, {
          manifestText: manifest("hello", "0.2.0"),
          meta: meta("hello", hash),
        }),
        /meta.json has version "0.1.0" but the manifest "0.2.0"/,
      );
    });
    await t.step("[wasm] without a pinned hash is refused", async () => {
      await assert.rejects(
        writeInstallRecord(dir, { manifestText: manifest("hello"), meta: meta("hello", null) }),
        /pins no wasm_hash: reinstall the capsule/,
      );
    });
    await t.step("a manifest hash that differs from the pinned one is refused", async () => {
      const text = manifest("hello").replace(
        "[wasm]\n",
        `[wasm]\nhash = "blake3:${"1".repeat(64)}"\n`,
      );
      await assert.rejects(
        writeInstallRecord(dir, { manifestText: text, meta: meta("hello", hash) }),
        /the manifest pins blake3:1{64} but meta.json/,
      );
    });
    await t.step("a directory without meta.json is an interrupted install", async () => {
      await Deno.remove(join(dir, "meta.json"));
      await assert.rejects(
        readInstallRecord(dir),
        /meta.json is missing \(an interrupted install\?\)/,
      );
    });
  });
});

Deno.test("discoverCapsules() finds user and workspace capsules; the user's wins a name clash", async () => {
  await withHome(async (home, workspace) => {
    const store = new BinaryStore(home.bin);
    const hash = await store.put(WASM);
    const user = userCapsulesDir(home, DEFAULT_PRINCIPAL);
    const ws = workspaceCapsulesDir(workspace);
    await writeInstallRecord(join(user, "shared"), {
      manifestText: manifest("shared", "1.0.0"),
      meta: meta("shared", hash, "1.0.0"),
    });
    await writeInstallRecord(join(user, "only-user"), {
      manifestText: manifest("only-user"),
      meta: meta("only-user", hash),
    });
    await writeInstallRecord(join(ws, "shared"), {
      manifestText: manifest("shared", "9.0.0"),
      meta: meta("shared", hash, "9.0.0"),
    });
    await writeInstallRecord(join(ws, "only-ws"), {
      manifestText: manifest("only-ws", "0.1.0", false),
      meta: meta("only-ws", null),
    });
    // Broken records are reported, not fatal.
    await Deno.mkdir(join(user, "broken"));
    await Deno.writeTextFile(
      join(user, "broken", "Capsule.toml"),
      `[package]\nname = "broken"\nversion = "x"\n`,
    );
    await Deno.writeTextFile(
      join(user, "broken", "meta.json"),
      JSON.stringify(meta("broken", null)),
    );
    await Deno.mkdir(join(user, "Bad_Name"));
    await Deno.mkdir(join(user, ".installing-tmp"));
    await Deno.symlink(join(user, "only-user"), join(ws, "linked"));

    const found = await discoverCapsules(home, { principal: DEFAULT_PRINCIPAL, workspace });
    assert.deepEqual(
      found.capsules.map((c) => `${c.name}@${c.manifest.package.version}:${c.scope}`),
      [
        "only-user@0.1.0:user",
        "only-ws@0.1.0:workspace",
        "shared@1.0.0:user",
      ],
    );
    assert.deepEqual(found.shadowed.map((c) => `${c.name}:${c.scope}`), ["shared:workspace"]);
    assert.deepEqual(
      found.problems.map((p) => `${p.dir.split("/").slice(-1)[0]}:${p.error.code}`),
      [
        "Bad_Name:INSTALL_RECORD_INVALID",
        "broken:MANIFEST_INVALID",
        "linked:INSTALL_RECORD_INVALID",
      ],
    );
    assert.match(found.problems[2].error.message, /is a symlink/);
    assert.match(
      found.problems[1].error.message,
      /Capsule.toml:3: package.version: "x" is not a semantic version/,
    );

    const other = await discoverCapsules(home, { principal: principalId("alice") });
    assert.deepEqual(other.capsules, []);
  });
});

Deno.test("readInstalledWasm() refuses a missing or wrong hash", async (t) => {
  await withHome(async (home) => {
    const store = new BinaryStore(home.bin);
    const hash = await store.put(WASM);
    const dir = join(userCapsulesDir(home, DEFAULT_PRINCIPAL), "hello");
    const record = await writeInstallRecord(dir, {
      manifestText: manifest("hello"),
      meta: meta("hello", hash),
    });
    await t.step("pinned and intact: loads", async () => {
      assert.deepEqual(await readInstalledWasm(store, record), WASM);
    });
    await t.step("no pinned hash: refused", async () => {
      await assert.rejects(
        readInstalledWasm(store, { ...record, meta: { ...record.meta, wasm_hash: null } }),
        hasCode(CapsuleCode.BINARY_BAD_HASH),
      );
    });
    await t.step("manifest and record disagree: refused", async () => {
      const wasm = { file: "hello.wasm", hash: `blake3:${"2".repeat(64)}` };
      await assert.rejects(
        readInstalledWasm(store, { ...record, manifest: { ...record.manifest, wasm } }),
        hasCode(CapsuleCode.BINARY_HASH_MISMATCH),
      );
    });
    await t.step("binary changed on disk: refused", async () => {
      await Deno.writeFile(store.path(hash), new Uint8Array([1, 2, 3]));
      await assert.rejects(
        readInstalledWasm(store, record),
        hasCode(CapsuleCode.BINARY_HASH_MISMATCH),
      );
    });
    await t.step("binary gone: refused", async () => {
      await store.remove(hash);
      await assert.rejects(readInstalledWasm(store, record), hasCode(CapsuleCode.BINARY_NOT_FOUND));
    });
  });
});

Deno.test("parseInstallMeta() refuses malformed meta.json", () => {
  const good = meta("hello", null);
  assert.deepEqual(parseInstallMeta(JSON.stringify(good), "d"), good);
  const cases: [unknown, RegExp][] = [
    ["not json", /meta.json is not JSON/],
    [[], /not a JSON object/],
    [{ ...good, name: "" }, /field "name" must be a non-empty string/],
    [{ ...good, wasm_hash: "sha256:00" }, /"wasm_hash" must be "blake3:<64 hex>" or null/],
    [{ ...good, installed_at: "yesterday" }, /"installed_at" is not an ISO 8601 time/],
  ];
  for (const [value, pattern] of cases) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    assert.throws(() => parseInstallMeta(text, "d"), (err: unknown) => {
      assert.ok(err instanceof CapsuleError);
      assert.equal(err.code, CapsuleCode.INSTALL_RECORD_INVALID);
      assert.match(err.message, pattern);
      return true;
    });
  }
});
