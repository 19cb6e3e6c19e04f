import assert from "node:assert/strict";
import { join } from "node:path";
import { VfsCode } from "./errors.ts";
import { overlayFixture, treeSnapshot } from "./_overlay_fixture.ts";
import { rejectsWith } from "./_vfs_suite.ts";
import { makeWhiteout } from "./whiteout.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("OverlayVfs.foldUpper() merges a hand-made overlayfs upper dir", async (t) => {
  const f = await overlayFixture();
  try {
    await Deno.mkdir(`${f.ws}/src`);
    await Deno.writeTextFile(`${f.ws}/src/a.ts`, "lower a");
    await Deno.writeTextFile(`${f.ws}/old.txt`, "old");
    await Deno.mkdir(`${f.ws}/gone_dir/inner`, { recursive: true });
    await Deno.writeTextFile(`${f.ws}/gone_dir/inner/x`, "x");
    const vfs = await f.open();
    await vfs.writeFile("session-only.txt", "made by the session");
    // What a subprocess's overlay mount would leave behind.
    const cmd = join(f.home, "cmd-upper");
    await Deno.mkdir(`${cmd}/src`, { recursive: true });
    await Deno.writeTextFile(`${cmd}/new.txt`, "from the command");
    await Deno.writeTextFile(`${cmd}/src/a.ts`, "command a");
    await Deno.chmod(`${cmd}/src/a.ts`, 0o700);
    await run("mknod", [`${cmd}/old.txt`, "c", "0", "0"]);
    await makeWhiteout(`${cmd}/gone_dir`, "chardev");
    await makeWhiteout(`${cmd}/session-only.txt`, "chardev");
    await Deno.symlink("new.txt", `${cmd}/link`);
    await run("mkfifo", [`${cmd}/fifo`]);
    const source = await treeSnapshot(cmd);
    const result = await vfs.foldUpper(cmd);
    await t.step("reports what changed and what it skipped", () => {
      assert.deepEqual(result.changed, [
        "gone_dir",
        "link",
        "new.txt",
        "old.txt",
        "session-only.txt",
        "src/a.ts",
      ]);
      assert.deepEqual(result.skipped, ["fifo"]);
    });
    await t.step("the merged view shows the command's work", async () => {
      assert.deepEqual((await vfs.readdir("")).map((e) => `${e.name}:${e.kind}`), [
        "link:symlink",
        "new.txt:file",
        "src:dir",
      ]);
      assert.equal(text(await vfs.readFile("link")), "from the command");
      assert.equal(text(await vfs.readFile("src/a.ts")), "command a");
    });
    await t.step("whiteouts became deletions in the session's upper dir", async () => {
      const upper = await treeSnapshot(vfs.upperDir);
      assert.equal(upper["old.txt"], "other 0");
      assert.equal(upper["gone_dir"], "other 0");
      assert.equal(upper["session-only.txt"], undefined, "nothing to hide in the workspace");
      assert.ok(upper["src/a.ts"].startsWith("file 700 "));
    });
    await t.step("the folded dir and the workspace are untouched", async () => {
      assert.deepEqual(await treeSnapshot(cmd), source);
      assert.equal(await Deno.readTextFile(`${f.ws}/old.txt`), "old");
    });
    await t.step("commit applies the folded changes", async () => {
      const { conflicts } = await vfs.commit();
      assert.deepEqual(conflicts, []);
      assert.deepEqual(Object.keys(await treeSnapshot(f.ws)).sort(), [
        "link",
        "new.txt",
        "src",
        "src/a.ts",
      ]);
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("OverlayVfs.foldUpper() refuses a missing dir and over-long names", async () => {
  const f = await overlayFixture();
  try {
    const vfs = await f.open();
    await rejectsWith(vfs.foldUpper(join(f.home, "nope")), VfsCode.VFS_NOT_FOUND);
  } finally {
    await f.dispose();
  }
});

/** Removes a tree an overlayfs mount used (its `work/work` dir is left mode 000). */
async function removeTree(dir: string): Promise<void> {
  const walk = async (path: string): Promise<void> => {
    const info = await Deno.lstat(path);
    if (!info.isDirectory) return;
    await Deno.chmod(path, 0o700);
    for await (const entry of Deno.readDir(path)) await walk(`${path}/${entry.name}`);
  };
  await walk(dir).catch(() => {});
  await Deno.remove(dir, { recursive: true });
}

const canMount = await (async () => {
  if (Deno.build.os !== "linux") return false;
  const dir = await Deno.makeTempDir();
  try {
    for (const d of ["l", "u", "w", "m"]) await Deno.mkdir(`${dir}/${d}`);
    const out = await new Deno.Command("unshare", {
      args: [
        "-Urm",
        "mount",
        "-t",
        "overlay",
        "overlay",
        "-o",
        `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w,userxattr`,
        `${dir}/m`,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  } finally {
    await removeTree(dir);
  }
})();

Deno.test({
  name: "OverlayVfs.foldUpper() folds what a real overlayfs mount left (opaque dirs included)",
  ignore: !canMount, // needs `unshare -Urm` and overlayfs (Linux); macOS has neither
  async fn() {
    const f = await overlayFixture();
    try {
      await Deno.mkdir(`${f.ws}/keep/sub`, { recursive: true });
      await Deno.writeTextFile(`${f.ws}/keep/sub/k`, "k");
      await Deno.mkdir(`${f.ws}/replace`);
      await Deno.writeTextFile(`${f.ws}/replace/old1`, "1");
      await Deno.writeTextFile(`${f.ws}/replace/old2`, "2");
      await Deno.writeTextFile(`${f.ws}/rm.txt`, "rm");
      await Deno.writeTextFile(`${f.ws}/edit.txt`, "before");
      const vfs = await f.open();
      await vfs.writeFile("session.txt", "session");
      await vfs.unlink("keep/sub/k");
      const cmd = join(f.home, "cmd");
      for (const d of ["upper", "work", "merged"]) {
        await Deno.mkdir(`${cmd}/${d}`, { recursive: true });
      }
      const script = [
        `mount -t overlay overlay -o lowerdir=${vfs.upperDir}:${f.ws},upperdir=${cmd}/upper,workdir=${cmd}/work,userxattr ${cmd}/merged`,
        `cd ${cmd}/merged`,
        "rm rm.txt",
        "echo after > edit.txt",
        "rm -rf replace && mkdir replace && echo fresh > replace/new",
        "echo cmd > keep/sub/k2",
        "mv session.txt renamed.txt",
        "find . | sort > ../seen.txt",
      ].join(" && ");
      await run("unshare", ["-Urm", "sh", "-c", script]);
      const seen = (await Deno.readTextFile(`${cmd}/seen.txt`)).trim().split("\n")
        .filter((p) => p !== ".").map((p) => p.slice(2));
      await vfs.withExclusive(() => vfs.foldUpper(`${cmd}/upper`));
      const listed: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const entry of await vfs.readdir(dir)) {
          const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
          listed.push(path);
          if (entry.kind === "dir") await walk(path);
        }
      };
      await walk("");
      assert.deepEqual(listed.sort(), seen.sort());
      assert.equal(text(await vfs.readFile("edit.txt")), "after\n");
      assert.deepEqual(await vfs.readdir("replace"), [{ name: "new", kind: "file" }]);
      assert.equal(text(await vfs.readFile("renamed.txt")), "session");
      assert.equal(await Deno.readTextFile(`${f.ws}/edit.txt`), "before");
      const changes = (await vfs.diff()).map((c) => `${c.change} ${c.path}`);
      assert.deepEqual(changes, [
        "modified edit.txt",
        "deleted keep/sub/k",
        "added keep/sub/k2",
        "added renamed.txt",
        "added replace/new",
        "deleted replace/old1",
        "deleted replace/old2",
        "deleted rm.txt",
      ]);
    } finally {
      await removeTree(join(f.home, "cmd")).catch(() => {});
      await f.dispose();
    }
  },
});
