import assert from "node:assert/strict";
import { exitOf, launch } from "./_launch.ts";
import { READY_MARKER, shellQuote } from "./_script.ts";

const text = (b: ArrayBuffer) => new TextDecoder().decode(b);
const hasUnshare = Deno.build.os === "linux" &&
  (await new Deno.Command("unshare", { args: ["-Urm", "--pid", "--fork", "true"] }).output()
    .then((o) => o.success, () => false));
if (!hasUnshare) console.log("Skipping launch() namespace tests: unshare -Urm --pid fails here");

function nsLaunch(script: string, argv: string[] = ["true"]) {
  return launch({
    mode: "namespace",
    argv,
    script,
    unshareArgs: ["--user", "--map-root-user", "--pid", "--fork", "--kill-child=SIGKILL"],
    stdin: "null",
  });
}

Deno.test({
  name: "launch() strips the ready marker and reports a setup that never got there",
  ignore: !hasUnshare,
  async fn(t) {
    await t.step("marker, then the command's output", async () => {
      const l = nsLaunch(`printf %s ${shellQuote(READY_MARKER)}; exec "$@"`, ["echo", "out"]);
      const [ready, out] = await Promise.all([l.ready, new Response(l.stdout).arrayBuffer()]);
      await l.status;
      assert.equal(ready, true);
      assert.equal(text(out), "out\n");
    });
    await t.step("a setup that fails first: not ready, its output kept", async () => {
      const l = nsLaunch(`echo broken; exit 3`);
      const [ready, out, status] = await Promise.all([
        l.ready,
        new Response(l.stdout).arrayBuffer(),
        l.status,
      ]);
      assert.equal(ready, false);
      assert.equal(text(out), "broken\n");
      assert.equal(status.code, 3);
    });
  },
});

Deno.test({
  name: "launch() signals the command, not PID 1, and SIGKILL ends the namespace",
  ignore: !hasUnshare,
  async fn(t) {
    const script = `printf %s ${shellQuote(READY_MARKER)}; "$@"; exit $?`;
    await t.step("SIGTERM reaches the command; the shell reports 128 + 15", async () => {
      const l = nsLaunch(script, ["sh", "-c", "echo up; sleep 1000"]);
      const reader = l.stdout.getReader();
      assert.equal(await l.ready, true);
      assert.equal(new TextDecoder().decode((await reader.read()).value), "up\n");
      l.signal("SIGTERM");
      const status = await l.status;
      assert.deepEqual(exitOf(status), { code: 143, signal: "SIGTERM" });
      reader.releaseLock();
      await l.stdout.cancel();
      await l.stderr.cancel();
    });
    await t.step("killAll() takes everything down", async () => {
      const l = nsLaunch(script, ["sh", "-c", "echo up; sleep 1000"]);
      const reader = l.stdout.getReader();
      await reader.read();
      l.killAll();
      assert.equal((await l.status).signal, "SIGKILL");
      reader.releaseLock();
      await l.stdout.cancel();
      await l.stderr.cancel();
    });
  },
});

Deno.test("launch() direct mode runs in its own session and kills its group", async () => {
  const l = launch({
    mode: "direct",
    argv: ["sh", "-c", "echo $$; sleep 1000"],
    cwd: "/",
    env: { PATH: "/usr/bin:/bin" },
    stdin: "null",
  });
  const reader = l.stdout.getReader();
  const first = new TextDecoder().decode((await reader.read()).value).trim();
  assert.equal(Number(first), l.pid, "setsid execs in place: the pid is the command's");
  l.signal("SIGTERM");
  assert.equal((await l.status).signal, "SIGTERM");
  reader.releaseLock();
  await l.stdout.cancel();
  await l.stderr.cancel();
});

Deno.test("exitOf() reads 128 + n as signal n, as a shell reports it", () => {
  assert.deepEqual(exitOf({ success: false, code: 137, signal: null }), {
    code: 137,
    signal: "SIGKILL",
  });
  assert.deepEqual(exitOf({ success: false, code: 3, signal: null }), { code: 3, signal: null });
  assert.deepEqual(exitOf({ success: false, code: 143, signal: "SIGTERM" }), {
    code: 143,
    signal: "SIGTERM",
  });
});
