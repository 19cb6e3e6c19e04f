import assert from "node:assert/strict";
import { hasCode } from "../errors.ts";
import { checkRunDir, prepareSocketPath } from "./_socket_guard.ts";

/** Leaves a socket file nobody listens on, as a daemon killed with SIGKILL does. */
async function staleSocket(path: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} }); Deno.exit(0);`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  assert.equal((await Deno.lstat(path)).isSocket, true);
}

Deno.test("prepareSocketPath() clears the socket path safely", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ag" });
  const sock = `${dir}/system.sock`;
  try {
    await t.step("absent: nothing to do", async () => {
      assert.equal(await prepareSocketPath(sock), "absent");
    });

    await t.step("a stale socket (connect refused) is removed", async () => {
      await staleSocket(sock);
      assert.equal(await prepareSocketPath(sock), "removed_stale");
      await assert.rejects(() => Deno.lstat(sock), Deno.errors.NotFound);
    });

    await t.step("a live socket aborts", async () => {
      const listener = Deno.listen({ transport: "unix", path: sock });
      const accepting = listener.accept().then((c) => c.close(), () => {});
      try {
        await assert.rejects(
          () => prepareSocketPath(sock),
          (e) => hasCode(e, "DAEMON_SOCKET_IN_USE"),
        );
      } finally {
        await accepting;
        listener.close();
      }
    });

    await t.step("a symlink is removed unconditionally, even to a live socket", async () => {
      const other = `${dir}/other.sock`;
      const listener = Deno.listen({ transport: "unix", path: other });
      try {
        await Deno.symlink(other, sock);
        assert.equal(await prepareSocketPath(sock), "removed_symlink");
        await assert.rejects(() => Deno.lstat(sock), Deno.errors.NotFound);
        assert.equal((await Deno.lstat(other)).isSocket, true);
      } finally {
        listener.close();
      }
    });

    await t.step("a regular file is not ours to delete", async () => {
      await Deno.writeTextFile(sock, "keep me");
      await assert.rejects(
        () => prepareSocketPath(sock),
        (e) =>
          hasCode(e, "DAEMON_UNSAFE_PATH") &&
          /not a socket: move it away/.test((e as Error).message),
      );
      assert.equal(await Deno.readTextFile(sock), "keep me");
      await Deno.remove(sock);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkRunDir() wants a real 0700 directory of this user", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ag" });
  try {
    const run = `${dir}/run`;
    await Deno.mkdir(run, { mode: 0o700 });
    await Deno.chmod(run, 0o700);
    await t.step("0700 passes", async () => {
      await checkRunDir(run);
    });
    await t.step("a group- or world-accessible mode fails", async () => {
      await Deno.chmod(run, 0o755);
      await assert.rejects(() => checkRunDir(run), /has mode 755, expected 700/);
      await Deno.chmod(run, 0o700);
    });
    await t.step("a symlinked run dir fails", async () => {
      await Deno.symlink(run, `${dir}/link`);
      await assert.rejects(() => checkRunDir(`${dir}/link`), /is a symlink/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
