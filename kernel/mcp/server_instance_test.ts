import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { systemClock } from "../clock.ts";
import { systemTimers } from "../events/mod.ts";
import type { OverlayVfs } from "../vfs/mod.ts";
import { DirectLauncher, type McpLaunch, type McpLauncher } from "./launcher.ts";
import type { StdioProcess } from "./process_transport.ts";
import { type InstanceScope, McpServerInstance, restartDelay } from "./server_instance.ts";

const SERVER = fileURLToPath(new URL("./_test_server.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** Runs the test server directly but behaves as a sandbox would: it holds the session. */
class HoldingLauncher implements McpLauncher {
  readonly sandboxed = true;
  readonly holdsSession = true;
  readonly sessions: string[] = [];
  readonly #direct = new DirectLauncher();
  readonly #of: (overlay: OverlayVfs | undefined) => string;
  constructor(of: (overlay: OverlayVfs | undefined) => string) {
    this.#of = of;
  }
  spawn(launch: McpLaunch): Promise<StdioProcess> {
    this.sessions.push(this.#of(launch.overlay));
    return this.#direct.spawn(launch);
  }
}

function scope(session: string): InstanceScope {
  // Only the session lock's queue length is read from the overlay here.
  const overlay = { lock: { waiting: 0 }, session } as unknown as OverlayVfs;
  return { principal: "default", workspaceId: "w1", session, workspaceRoot: "/", overlay };
}

Deno.test("restartDelay() doubles from the base up to the cap", () => {
  const policy = { baseMs: 250, maxMs: 1000, maxFailures: 5, stableMs: 60_000 };
  assert.deepEqual([1, 2, 3, 4].map((n) => restartDelay(n, policy)), [250, 500, 1000, 1000]);
});

Deno.test("McpServerInstance.call() serves one session at a time and moves between them", async (t) => {
  const launcher = new HoldingLauncher((o) => (o as unknown as { session: string }).session);
  const s1 = scope("s1");
  const s2 = scope("s2");
  const scratch = await Deno.makeTempDir();
  const inst = new McpServerInstance({
    spec: {
      name: "t",
      command: Deno.execPath(),
      args: ["run", "-A", "--quiet", `--config=${CONFIG}`, SERVER],
      env: {},
      origin: { kind: "operator", file: "/etc/servers.toml" },
      dir: "/",
      fsRead: ["*"],
      fsWrite: ["*"],
      network: false,
    },
    launcher,
    scope: s1,
    scratchDir: scratch,
    timers: systemTimers,
    clock: systemClock,
    log: () => {},
    idleTimeoutMs: 0,
  });
  try {
    await t.step("a call of its session starts it over that session", async () => {
      await inst.call("echo", {}, { scope: s1 });
      assert.deepEqual(launcher.sessions, ["s1"]);
      assert.equal(inst.scope?.session, "s1");
    });
    await t.step(
      "another session waits for the calls in flight, which may still call",
      async () => {
        const order: string[] = [];
        const slow = inst.call("slow", {}, { scope: s1 }).then(() => order.push("s1 slow"));
        const other = inst.call("echo", {}, { scope: s2 }).then(() => order.push("s2 echo"));
        // s1's own call goes in although s2 waits: it ends the slow one (no deadlock).
        await inst.call("release", {}, { scope: s1 }).then(() => order.push("s1 release"));
        await Promise.all([slow, other]);
        assert.deepEqual(order, ["s1 release", "s1 slow", "s2 echo"]);
        assert.deepEqual(launcher.sessions, ["s1", "s2"], "restarted once, over s2");
        assert.equal(inst.scope?.session, "s2");
      },
    );
    await t.step("release() stops it for its session only and forgets the overlay", async () => {
      assert.equal(await inst.release("s1"), false);
      assert.equal(inst.state, "running");
      assert.equal(await inst.release("s2"), true);
      assert.equal(inst.state, "stopped");
      assert.equal(inst.scope, undefined);
      await inst.call("echo", {}, { scope: s1 });
      assert.deepEqual(launcher.sessions, ["s1", "s2", "s1"]);
    });
  } finally {
    await inst.close();
    await Deno.remove(scratch, { recursive: true });
  }
});
