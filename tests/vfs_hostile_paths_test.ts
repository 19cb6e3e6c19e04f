/**
 * Proves that hostile VFS paths are rejected with the right code through every operation of
 * every filesystem (host, overlay with both whiteout formats, the scheme router), and that a
 * rejection changes nothing on disk: not the workspace, not the overlay's upper dir, not the
 * directory the symlinks point at.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { blake3File } from "../kernel/crypto/mod.ts";
import { HostVfs, OverlayVfs, type Vfs, VfsCode, VfsError, VfsRouter } from "../kernel/vfs/mod.ts";

/** [what, path, expected code] */
const HOSTILE: [string, string, string][] = [
  ["parent traversal", "../../etc/passwd", VfsCode.VFS_PATH_ESCAPE],
  ["traversal after a name", "a/../../x", VfsCode.VFS_PATH_ESCAPE],
  ["any .. segment, even one that stays inside", "a/../b", VfsCode.VFS_PATH_ESCAPE],
  ["absolute path outside the root", "/etc/passwd", VfsCode.VFS_PATH_ESCAPE],
  ["absolute path after the scheme", "workspace:///etc/passwd", VfsCode.VFS_PATH_INVALID],
  ["unknown scheme", "file:///etc/passwd", VfsCode.VFS_SCHEME_UNKNOWN],
  ["through a symlink to /etc", "etc_link/passwd", VfsCode.VFS_SYMLINK_ESCAPE],
  ["a symlink to /etc itself", "etc_link", VfsCode.VFS_SYMLINK_ESCAPE],
  [
    "through a workspace symlink to ../outside",
    "inner/out_link/secret.txt",
    VfsCode.VFS_SYMLINK_ESCAPE,
  ],
  ["a workspace symlink to ../outside", "inner/out_link", VfsCode.VFS_SYMLINK_ESCAPE],
  ["through an absolute symlink outside", "abs_out/secret.txt", VfsCode.VFS_SYMLINK_ESCAPE],
  ["a symlink loop", "loop_a", VfsCode.VFS_SYMLINK_LOOP],
  ["through a symlink loop", "loop_b/x", VfsCode.VFS_SYMLINK_LOOP],
  ["a self-referencing symlink", "self", VfsCode.VFS_SYMLINK_LOOP],
  ["a NUL byte", "ok.txt\0.png", VfsCode.VFS_PATH_INVALID],
  ["an unpaired surrogate", "bad\ud800name", VfsCode.VFS_PATH_INVALID],
  ["a 10,000-character name", "n".repeat(10_000), VfsCode.VFS_PATH_TOO_LONG],
  ["a 300-byte component", `a/${"é".repeat(150)}`, VfsCode.VFS_NAME_TOO_LONG],
];

type Op = [name: string, run: (vfs: Vfs, path: string) => Promise<unknown>];

const OPS: Op[] = [
  ["exists", (vfs, p) => vfs.exists(p)],
  ["resolve", (vfs, p) => vfs.resolve(p)],
  ["readFile", (vfs, p) => vfs.readFile(p)],
  ["writeFile", (vfs, p) => vfs.writeFile(p, "pwned")],
  ["stat", (vfs, p) => vfs.stat(p)],
  ["readdir", (vfs, p) => vfs.readdir(p)],
  ["mkdir", (vfs, p) => vfs.mkdir(p)],
  ["mkdir recursive", (vfs, p) => vfs.mkdir(p, { recursive: true })],
  ["unlink", (vfs, p) => vfs.unlink(p)],
  ["rmdir recursive", (vfs, p) => vfs.rmdir(p, { recursive: true })],
  ["rename from", (vfs, p) => vfs.rename(p, "renamed.txt")],
  ["rename to", (vfs, p) => vfs.rename("ok.txt", p)],
];

interface Subject {
  vfs: Vfs;
  /** Host dirs that must not change (workspace, upper dir). */
  watched: string[];
  close(): void;
}

const IMPLEMENTATIONS: [string, (ws: string, base: string) => Promise<Subject>][] = [
  ["HostVfs", async (ws) => ({ vfs: await HostVfs.open(ws), watched: [ws], close() {} })],
  ...(["chardev", "marker"] as const).map((
    whiteout,
  ): [string, (ws: string, base: string) => Promise<Subject>] => [
    `OverlayVfs (${whiteout})`,
    async (ws, base) => {
      const vfs = await OverlayVfs.open(ws, join(base, `session-${whiteout}`), { whiteout });
      return { vfs, watched: [ws, vfs.upperDir], close: () => vfs.close() };
    },
  ]),
  ["VfsRouter over OverlayVfs", async (ws, base) => {
    const overlay = await OverlayVfs.open(ws, join(base, "session-router"));
    const vfs = new VfsRouter({ workspace: overlay });
    return { vfs, watched: [ws, overlay.upperDir], close: () => overlay.close() };
  }],
];

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (host: string, rel: string): Promise<void> => {
    for await (const entry of Deno.readDir(host)) {
      const childRel = `${rel}/${entry.name}`;
      const info = await Deno.lstat(`${host}/${entry.name}`);
      if (info.isSymlink) out[childRel] = `symlink ${await Deno.readLink(`${host}/${entry.name}`)}`;
      else if (info.isDirectory) {
        out[childRel] = "dir";
        await walk(`${host}/${entry.name}`, childRel);
      } else if (info.isFile) out[childRel] = `file ${await blake3File(`${host}/${entry.name}`)}`;
      else out[childRel] = "other";
    }
  };
  await walk(dir, "");
  return out;
}

async function layout(): Promise<{ base: string; ws: string; outside: string }> {
  const base = await Deno.makeTempDir();
  const ws = join(base, "ws");
  const outside = join(base, "outside");
  await Deno.mkdir(join(ws, "a"), { recursive: true });
  await Deno.mkdir(join(ws, "inner"));
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "secret.txt"), "secret");
  await Deno.writeTextFile(join(ws, "b"), "b");
  await Deno.writeTextFile(join(ws, "ok.txt"), "ok");
  await Deno.symlink("/etc", join(ws, "etc_link"));
  await Deno.symlink("../../outside", join(ws, "inner/out_link"));
  await Deno.symlink(outside, join(ws, "abs_out"));
  await Deno.symlink("loop_b", join(ws, "loop_a"));
  await Deno.symlink("loop_a", join(ws, "loop_b"));
  await Deno.symlink("self", join(ws, "self"));
  return { base, ws, outside };
}

for (const [implementation, open] of IMPLEMENTATIONS) {
  Deno.test(`${implementation} rejects every hostile path through every operation`, async (t) => {
    const { base, ws, outside } = await layout();
    const subject = await open(ws, base);
    try {
      const before = await Promise.all([outside, ...subject.watched].map(snapshot));
      for (const [what, path, code] of HOSTILE) {
        await t.step(`${what} -> ${code}`, async () => {
          for (const [op, run] of OPS) {
            let caught: unknown;
            try {
              await run(subject.vfs, path);
            } catch (err) {
              caught = err;
            }
            assert.ok(caught instanceof VfsError, `${op}: expected ${code}, got ${String(caught)}`);
            assert.equal(caught.code, code, `${op}: ${caught.message}`);
            assert.match(caught.message, /"/, `${op}: the message quotes the path`);
          }
        });
      }
      await t.step("nothing changed on disk, inside or outside the root", async () => {
        assert.deepEqual(await Promise.all([outside, ...subject.watched].map(snapshot)), before);
      });
      await t.step("an absolute path inside the root is accepted and made relative", async () => {
        assert.equal(
          new TextDecoder().decode(await subject.vfs.readFile(join(ws, "ok.txt"))),
          "ok",
        );
        await subject.vfs.writeFile(join(ws, "a", "abs.txt"), "written");
        assert.deepEqual(await subject.vfs.resolve(join(ws, "a", "abs.txt")), {
          path: "a/abs.txt",
          kind: "file",
        });
        assert.deepEqual(await subject.vfs.readdir(join(ws, "a")), [{
          name: "abs.txt",
          kind: "file",
        }]);
      });
    } finally {
      subject.close();
      await Deno.remove(base, { recursive: true });
    }
  });
}
