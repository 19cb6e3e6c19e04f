import assert from "node:assert/strict";
import { hasCode } from "../errors.ts";
import { InstanceLock, readPid } from "./_instance_lock.ts";

Deno.test("InstanceLock allows one holder per home", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ad" });
  const path = `${dir}/system.lock`;
  try {
    const first = await InstanceLock.acquire(path, dir);

    await t.step("the holder's PID is written inside, mode 0600", async () => {
      assert.equal(await readPid(path), Deno.pid);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    });

    await t.step("a second acquire fails at once, naming the holder", async () => {
      await assert.rejects(
        () => InstanceLock.acquire(path, dir),
        (e) =>
          hasCode(e, "DAEMON_ALREADY_RUNNING") &&
          (e as Error).message.includes(`(PID ${Deno.pid}) is already running for "${dir}"`),
      );
    });

    await t.step("release removes the file and frees the lock", async () => {
      await first.release();
      await first.release(); // idempotent
      await assert.rejects(() => Deno.stat(path), Deno.errors.NotFound);
      const again = await InstanceLock.acquire(path, dir);
      await again.release();
    });

    await t.step("a lock file left by a crashed holder is taken over", async () => {
      await Deno.writeTextFile(path, "999999\n");
      const lock = await InstanceLock.acquire(path, dir);
      assert.equal(await readPid(path), Deno.pid);
      await lock.release();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
