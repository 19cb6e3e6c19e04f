import assert from "node:assert/strict";
import { join } from "node:path";
import { AstridHome } from "../home/mod.ts";
import { hasCode } from "../errors.ts";
import { VfsCode } from "./errors.ts";
import { HostVfs } from "./host_vfs.ts";
import { OverlayVfs } from "./overlay_vfs.ts";
import { overlaySessionDir, VfsRouter } from "./vfs_router.ts";
import { rejectsWith } from "./_vfs_suite.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function setup() {
  const base = await Deno.makeTempDir();
  const home = await AstridHome.open(join(base, "astrid"));
  const ws = join(base, "ws");
  await Deno.mkdir(ws);
  await Deno.writeTextFile(join(ws, "readme.md"), "workspace");
  await Deno.writeTextFile(join(home.keys, "runtime.key"), "KEY");
  await Deno.writeTextFile(join(home.var, "state.db"), "DB");
  await home.ensurePrincipal("bob");
  await Deno.writeTextFile(join(home.principalDir("bob"), "bob.txt"), "bob's");
  const overlay = await OverlayVfs.open(
    ws,
    overlaySessionDir(home, { principal: "alice", workspaceId: "w1", session: "s1" }),
  );
  const router = await VfsRouter.forSession(home, { principal: "alice", workspace: overlay });
  return {
    home,
    ws,
    router,
    async dispose() {
      overlay.close();
      await Deno.remove(base, { recursive: true });
    },
  };
}

Deno.test("VfsRouter routes each scheme to its filesystem", async (t) => {
  const { home, ws, router, dispose } = await setup();
  try {
    await t.step("bare paths and workspace:// reach the overlay", async () => {
      assert.equal(text(await router.readFile("readme.md")), "workspace");
      await router.writeFile("workspace://new.txt", "n");
      await assert.rejects(Deno.lstat(join(ws, "new.txt")), Deno.errors.NotFound);
      assert.deepEqual(await router.route("./new.txt"), {
        path: "new.txt",
        kind: "file",
        scheme: "workspace",
        uri: "workspace://new.txt",
        vfs: router.mount("workspace"),
      });
    });
    await t.step("home:// is the principal's own directory", async () => {
      await router.writeFile("home://notes.txt", "mine");
      assert.equal(await Deno.readTextFile(join(home.principalDir("alice"), "notes.txt")), "mine");
      assert.equal((await router.route("home://notes.txt")).uri, "home://notes.txt");
    });
    await t.step("global:// is shared and read-only", async () => {
      await Deno.writeTextFile(join(home.root, "global", "shared.txt"), "shared");
      assert.equal(text(await router.readFile("global://shared.txt")), "shared");
      await rejectsWith(router.writeFile("global://x", "x"), VfsCode.VFS_READ_ONLY);
    });
    await t.step("unknown schemes and cross-scheme renames are refused", async () => {
      const err = await rejectsWith(
        router.readFile("file:///etc/passwd"),
        VfsCode.VFS_SCHEME_UNKNOWN,
      );
      assert.match(err.message, /use workspace:\/\/, home:\/\/, global:\/\//);
      await rejectsWith(
        router.rename("workspace://new.txt", "home://new.txt"),
        VfsCode.VFS_CROSS_SCHEME,
      );
    });
  } finally {
    await dispose();
  }
});

Deno.test("VfsRouter home:// never reaches keys, state, another principal or kernel dirs", async () => {
  const { home, router, dispose } = await setup();
  try {
    const alice = home.principalDir("alice");
    await Deno.symlink(home.keys, join(alice, "keys_link"));
    await Deno.symlink("../bob/bob.txt", join(alice, "bob_link"));
    const escapes: [string, string][] = [
      ["home://../../keys/runtime.key", VfsCode.VFS_PATH_ESCAPE],
      ["home://../bob/bob.txt", VfsCode.VFS_PATH_ESCAPE],
      [join(home.var, "state.db"), VfsCode.VFS_PATH_ESCAPE],
      ["home://keys_link/runtime.key", VfsCode.VFS_SYMLINK_ESCAPE],
      ["home://bob_link", VfsCode.VFS_SYMLINK_ESCAPE],
      ["home://.local/tmp/overlay/w1/s1/state.json", VfsCode.VFS_PATH_DENIED],
      ["home://.config/config.toml", VfsCode.VFS_PATH_DENIED],
    ];
    for (const [path, code] of escapes) await rejectsWith(router.readFile(path), code);
    await rejectsWith(router.writeFile("home://.config/config.toml", "x"), VfsCode.VFS_PATH_DENIED);
    const names = (await router.readdir("home://")).map((e) => e.name);
    assert.deepEqual(names, ["bob_link", "keys_link"]);
  } finally {
    await dispose();
  }
});

Deno.test("VfsRouter refuses a mount whose scheme differs from its key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const vfs = await HostVfs.open(dir, { scheme: "home" });
    assert.throws(() => new VfsRouter({ workspace: vfs }), (e) => hasCode(e, "INVALID_ARGUMENT"));
    assert.throws(() => new VfsRouter({ home: vfs }), (e) => hasCode(e, "INVALID_ARGUMENT"));
    const router = new VfsRouter({ home: vfs }, { defaultScheme: "home" });
    assert.equal(await router.exists("home://"), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("overlaySessionDir() places overlays under the principal's home and checks ids", () => {
  const home = { principalDir: (p: string) => `/h/home/${p}` };
  assert.equal(
    overlaySessionDir(home, { principal: "alice", workspaceId: "9f3a-b2", session: "chat.1" }),
    "/h/home/alice/.local/tmp/overlay/9f3a-b2/chat.1",
  );
  for (const bad of ["..", "a/b", "", ".hidden", "x".repeat(129)]) {
    assert.throws(
      () => overlaySessionDir(home, { principal: "alice", workspaceId: "w", session: bad }),
      (e) => hasCode(e, "INVALID_ARGUMENT"),
    );
  }
  assert.throws(
    () => overlaySessionDir(home, { principal: "../x", workspaceId: "w", session: "s" }),
    (e) => hasCode(e, "INVALID_ARGUMENT"),
  );
});
