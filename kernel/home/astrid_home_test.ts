import assert from "node:assert/strict";
import { join } from "node:path";
import { AstridHome, atomicWrite, resolveHomePath } from "./mod.ts";
import { hasCode } from "../errors.ts";

const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });

Deno.test("resolveHomePath() prefers ASTRID_HOME, then HOME/.astrid", () => {
  assert.equal(resolveHomePath(env({ ASTRID_HOME: "/srv/astrid", HOME: "/root" })), "/srv/astrid");
  assert.equal(resolveHomePath(env({ HOME: "/home/ada" })), "/home/ada/.astrid");
  assert.equal(resolveHomePath(env({ ASTRID_HOME: "", HOME: "/home/ada" })), "/home/ada/.astrid");
});

Deno.test("resolveHomePath() fails clearly instead of falling back to /tmp", () => {
  assert.throws(
    () => resolveHomePath(env({})),
    (e) => hasCode(e, "HOME_UNRESOLVABLE") && /ASTRID_HOME or HOME/.test((e as Error).message),
  );
  assert.throws(
    () => resolveHomePath(env({ ASTRID_HOME: "relative/dir" })),
    (e) => hasCode(e, "HOME_UNRESOLVABLE") && /absolute/.test((e as Error).message),
  );
});

Deno.test("AstridHome.open() lays out the FHS tree with 0700 directories", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = join(dir, "astrid");
    const home = await AstridHome.open(root);
    for (const sub of ["etc", "var", "run", "log", "keys", "bin", "home"]) {
      const info = await Deno.stat(join(root, sub));
      assert.ok(info.isDirectory, sub);
      assert.equal(info.mode! & 0o777, 0o700, sub);
    }
    assert.equal((await Deno.stat(root)).mode! & 0o777, 0o700);
    const p = await home.ensurePrincipal("alice");
    for (const sub of [".local/capsules", ".local/log", ".local/tmp", ".config/env"]) {
      assert.equal((await Deno.stat(join(p, sub))).mode! & 0o777, 0o700, sub);
    }
    assert.equal(home.runtimeKeyPath, join(root, "keys", "runtime.key"));
    assert.equal(
      home.userConfigPath("alice"),
      join(root, "home", "alice", ".config", "config.toml"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AstridHome.open() narrows an existing too-open directory to 0700", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "keys"), { mode: 0o755 });
    await Deno.chmod(join(dir, "keys"), 0o755);
    await AstridHome.open(dir);
    assert.equal((await Deno.stat(join(dir, "keys"))).mode! & 0o777, 0o700);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomicWrite() replaces a file whole, with the given mode, leaving no temp files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "secret");
    await atomicWrite(path, "one", { mode: 0o600 });
    await atomicWrite(path, "two", { mode: 0o600 });
    assert.equal(await Deno.readTextFile(path), "two");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["secret"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomicWrite() into a missing directory fails and names the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      atomicWrite(join(dir, "missing", "f"), "x"),
      (e) => hasCode(e, "ATOMIC_WRITE_FAILED") && (e as Error).message.includes("missing/f"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
