import assert from "node:assert/strict";
import { spawnBackground } from "./spawn_background.ts";
import { manualTimers, sandboxFixture, sandboxOrSkip } from "./_test_fixture.ts";
import { NativeSandbox } from "./native_sandbox.ts";
import { DEFAULT_CONFIG } from "../config/mod.ts";

const status = await sandboxOrSkip();
const ignore = !status.available;
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

async function logsUntil(
  proc: { readLogs(since?: number): { chunks: { data: Uint8Array }[] } },
  needle: string,
): Promise<string> {
  for (let i = 0; i < 1000; i++) {
    const text = proc.readLogs(0).chunks.map((c) => decode(c.data)).join("");
    if (text.includes(needle)) return text;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`No "${needle}" in the logs`);
}

Deno.test({
  name: "spawnBackground() logs output, holds the lock, and folds on exit",
  ignore,
  async fn(t) {
    const f = await sandboxFixture({ "a.txt": "a\n" });
    try {
      const proc = await spawnBackground(
        {
          argv: ["sh", "-c", "echo started; echo oops >&2; echo bg > bg.txt; rm a.txt; sleep 1000"],
        },
        { overlay: f.overlay },
      );
      await t.step("it runs and its logs are readable with offsets", async () => {
        assert.equal(proc.running, true);
        assert.equal(proc.sandboxed, true);
        assert.ok(proc.pid > 0);
        // stdout and stderr are separate pipes: wait for both lines, in whatever order.
        await logsUntil(proc, "oops");
        const text = await logsUntil(proc, "started");
        assert.match(text, /started\n/);
        assert.match(text, /oops\n/);
        const page = proc.readLogs(0);
        assert.deepEqual(proc.readLogs(page.next).chunks, []);
        assert.ok(page.chunks.some((c) => c.stream === "stderr"));
      });
      await t.step("a VFS write waits while it runs", async () => {
        let done = false;
        const write = f.overlay.writeFile("vfs.txt", "v").then(() => (done = true));
        for (let i = 0; i < 50; i++) await Promise.resolve();
        assert.equal(done, false);
        assert.equal(f.overlay.lock.waiting, 1);
        proc.kill("SIGTERM");
        const exit = await proc.exited;
        await write;
        assert.equal(exit.signal, "SIGTERM");
        assert.equal(exit.killed, true);
        assert.equal(exit.error, null);
        assert.deepEqual(exit.fold?.changed, ["a.txt", "bg.txt"]);
        assert.equal(proc.running, false);
      });
      await t.step("its writes are in the session's diff", async () => {
        assert.deepEqual((await f.overlay.diff()).map((c) => `${c.change} ${c.path}`), [
          "deleted a.txt",
          "added bg.txt",
          "added vfs.txt",
        ]);
        assert.equal(await Deno.readTextFile(`${f.ws}/a.txt`), "a\n");
      });
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "spawnBackground() with stdio pipe gives stdin and stdout streams (an MCP server)",
  ignore,
  async fn() {
    const f = await sandboxFixture();
    try {
      const proc = await spawnBackground(
        { argv: ["sh", "-c", 'while read line; do echo "got $line"; done; echo bye >&2'] },
        { overlay: f.overlay, stdio: "pipe" },
      );
      const writer = proc.stdin!.getWriter();
      const reader = proc.stdout!.getReader();
      await writer.write(new TextEncoder().encode("ping\n"));
      assert.equal(decode((await reader.read()).value!), "got ping\n");
      await writer.close();
      const exit = await proc.exited;
      assert.equal(exit.code, 0);
      assert.equal((await reader.read()).done, true);
      assert.equal(decode(proc.readLogs(0).chunks[0].data), "bye\n");
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "spawnBackground() stop() escalates to SIGKILL after the grace; timeout stops it",
  ignore,
  async fn(t) {
    const f = await sandboxFixture();
    try {
      await t.step("a command that ignores SIGTERM is killed when the grace ends", async () => {
        const timers = manualTimers();
        const proc = await spawnBackground(
          { argv: ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"] },
          { overlay: f.overlay, timers, killGraceMs: 1234 },
        );
        await logsUntil(proc, "ready");
        const stopping = proc.stop();
        assert.deepEqual(timers.pending(), [1234]);
        timers.fire(1234);
        const exit = await stopping;
        assert.equal(exit.signal, "SIGKILL");
        assert.equal(exit.killed, true);
      });
      await t.step("timeoutMs stops a background command", async () => {
        const timers = manualTimers();
        const proc = await spawnBackground(
          { argv: ["sh", "-c", "echo ready; sleep 1000"] },
          { overlay: f.overlay, timers, timeoutMs: 60_000 },
        );
        await logsUntil(proc, "ready");
        timers.fire(60_000);
        const exit = await proc.exited;
        assert.equal(exit.timedOut, true);
        assert.equal(exit.signal, "SIGTERM");
      });
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "NativeSandbox joins its defaults with each call's options",
  ignore,
  async fn() {
    const f = await sandboxFixture({ ".env": "SECRET\n", "ok.txt": "ok\n" });
    try {
      const sandbox = new NativeSandbox({ policy: DEFAULT_CONFIG.security.policy });
      assert.equal((await sandbox.status()).available, true);
      const r = await sandbox.run({ argv: ["sh", "-c", "cat ok.txt; cat .env"] }, {
        overlay: f.overlay,
      });
      assert.equal(decode(r.stdout), "ok\n");
      assert.deepEqual(r.masked, [".env"]);
      const proc = await sandbox.spawnBackground({ argv: ["cat", ".env"] }, { overlay: f.overlay });
      const exit = await proc.exited;
      assert.notEqual(exit.code, 0);
      assert.deepEqual(proc.masked, [".env"]);
    } finally {
      await f.dispose();
    }
  },
});
