import assert from "node:assert/strict";
import { HostVfs } from "./host_vfs.ts";
import { VfsCode } from "./errors.ts";
import { rejectsWith, runVfsSuite } from "./_vfs_suite.ts";

runVfsSuite("HostVfs", async () => {
  const root = await Deno.makeTempDir();
  return {
    vfs: await HostVfs.open(root),
    root,
    dispose: () => Deno.remove(root, { recursive: true }),
  };
});

Deno.test("HostVfs readOnly refuses every write after validating the path", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/f`, "f");
    await Deno.mkdir(`${root}/d`);
    const vfs = await HostVfs.open(root, { scheme: "global", readOnly: true });
    assert.equal(new TextDecoder().decode(await vfs.readFile("global://f")), "f");
    await rejectsWith(vfs.writeFile("f", "x"), VfsCode.VFS_READ_ONLY);
    await rejectsWith(vfs.mkdir("n"), VfsCode.VFS_READ_ONLY);
    await rejectsWith(vfs.mkdir("n", { recursive: true }), VfsCode.VFS_READ_ONLY);
    await rejectsWith(vfs.unlink("f"), VfsCode.VFS_READ_ONLY);
    await rejectsWith(vfs.rmdir("d"), VfsCode.VFS_READ_ONLY);
    await rejectsWith(vfs.rename("f", "g"), VfsCode.VFS_READ_ONLY);
    await rejectsWith(vfs.writeFile("../x", "x"), VfsCode.VFS_PATH_ESCAPE);
    assert.equal(await Deno.readTextFile(`${root}/f`), "f");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("HostVfs reserved paths do not exist for callers", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/.config/env`, { recursive: true });
    await Deno.writeTextFile(`${root}/.config/env/secret`, "s");
    await Deno.writeTextFile(`${root}/notes.txt`, "n");
    await Deno.symlink(".config/env/secret", `${root}/sneaky`);
    const vfs = await HostVfs.open(root, { scheme: "home", reserved: [".config"] });
    await t.step("direct, through a symlink, and via readdir", async () => {
      await rejectsWith(vfs.readFile("home://.config/env/secret"), VfsCode.VFS_PATH_DENIED);
      await rejectsWith(vfs.readFile(".config"), VfsCode.VFS_PATH_DENIED);
      await rejectsWith(vfs.readFile("sneaky"), VfsCode.VFS_PATH_DENIED);
      await rejectsWith(vfs.writeFile(".config/x", "x"), VfsCode.VFS_PATH_DENIED);
      await rejectsWith(vfs.rename("notes.txt", ".config"), VfsCode.VFS_PATH_DENIED);
      assert.deepEqual((await vfs.readdir("")).map((e) => e.name), ["notes.txt", "sneaky"]);
    });
    await t.step("a symlink to a reserved path can still be removed", async () => {
      await vfs.unlink("sneaky");
      assert.equal(await Deno.readTextFile(`${root}/.config/env/secret`), "s");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("HostVfs.open() refuses a missing root unless asked to create it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await rejectsWith(HostVfs.open(`${dir}/nope`), VfsCode.VFS_NOT_FOUND);
    const vfs = await HostVfs.open(`${dir}/made`, { create: true });
    assert.deepEqual(await vfs.readdir(""), []);
    assert.equal((await Deno.stat(`${dir}/made`)).mode! & 0o777, 0o700);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
