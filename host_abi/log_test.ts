import assert from "node:assert/strict";
import { CapsuleLogWriter, guestLogSink } from "./log.ts";

async function withHome(body: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    await body(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const home = (root: string) => ({ principalDir: (p: string) => `${root}/home/${p}` });

Deno.test("CapsuleLogWriter appends one line per entry to the capsule's file per principal", async () => {
  await withHome(async (root) => {
    const errors: string[] = [];
    const writer = new CapsuleLogWriter(home(root), {
      daemonLog: { error: (message) => errors.push(message) },
      maxLineBytes: 16,
    });
    const logs = writer.forCapsule("alice", "notes", "r1");
    await logs.write("info", "hello", 0);
    await logs.write("error", "line1\nFAKE 1970 INFO [x] forged", 1000);
    await writer.forCapsule("bob", "notes").write("warn", "bob's", 0);
    const alice = await Deno.readTextFile(`${root}/home/alice/.local/log/notes.log`);
    assert.equal(
      alice,
      "1970-01-01T00:00:00.000Z INFO [r1] hello\n" +
        "1970-01-01T00:00:01.000Z ERROR [r1] line1\\nFAKE 1970 …[truncated]\n",
    );
    assert.equal(
      await Deno.readTextFile(`${root}/home/bob/.local/log/notes.log`),
      "1970-01-01T00:00:00.000Z WARN [-] bob's\n",
    );
    assert.deepEqual(errors, ['Capsule "notes" logged an error: line1\nFAKE 1970 …[truncated]']);
  });
});

Deno.test("guestLogSink() writes worker-buffered lines under the invocation's principal", async () => {
  await withHome(async (root) => {
    const writer = new CapsuleLogWriter(home(root));
    const sink = guestLogSink(writer, { fallbackPrincipal: "default" });
    sink([{ level: "debug", message: "m", time_ms: 0 }], {
      capsule: "c",
      call: {
        capsule: "c",
        exportName: "e",
        context: { principal: "carol", requestId: "q" },
        signal: new AbortController().signal,
      },
    });
    sink([{ level: "info", message: "start", time_ms: 0 }], { capsule: "c" });
    await writer.flush();
    assert.equal(
      await Deno.readTextFile(`${root}/home/carol/.local/log/c.log`),
      "1970-01-01T00:00:00.000Z DEBUG [q] m\n",
    );
    assert.equal(
      await Deno.readTextFile(`${root}/home/default/.local/log/c.log`),
      "1970-01-01T00:00:00.000Z INFO [-] start\n",
    );
  });
});
