import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ManualClock } from "../clock.ts";
import { ManualTimers } from "../events/mod.ts";
import type { OverlayVfs } from "../vfs/mod.ts";
import { McpCode } from "./errors.ts";
import { DirectLauncher, type McpLaunch, type McpLauncher } from "./launcher.ts";
import type { StdioProcess } from "./process_transport.ts";
import {
  type InstanceScope,
  type McpLogEntry,
  McpServerInstance,
  type McpServerInstanceOptions,
  restartDelay,
  SWITCH_GRACE_MS,
} from "./server_instance.ts";
import type { McpServerSpec } from "./server_spec.ts";

const SERVER = fileURLToPath(new URL("./_test_server.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/**
 * Runs the test server directly and records the session of each start; with `holds`, it behaves
 * as a sandbox would (it holds the session: a switch restarts the server).
 */
class RecordingLauncher implements McpLauncher {
  readonly sandboxed: boolean;
  readonly holdsSession: boolean;
  readonly sessions: string[] = [];
  readonly #direct = new DirectLauncher();
  constructor(holds: boolean) {
    this.sandboxed = holds;
    this.holdsSession = holds;
  }
  spawn(launch: McpLaunch): Promise<StdioProcess> {
    this.sessions.push((launch.overlay as unknown as { session?: string })?.session ?? "none");
    return this.#direct.spawn(launch);
  }
}

const SPEC: McpServerSpec = {
  name: "t",
  command: Deno.execPath(),
  args: ["run", "-A", "--quiet", `--config=${CONFIG}`, SERVER],
  env: {},
  origin: { kind: "operator", file: "/etc/servers.toml" },
  dir: "/",
  fsRead: ["*"],
  fsWrite: ["*"],
  network: false,
};

/** An instance over the test server, on manual timers (the switch grace fires when told). */
async function fixture(
  holds: boolean,
  extra: Partial<McpServerInstanceOptions> = {},
): Promise<{
  inst: McpServerInstance;
  launcher: RecordingLauncher;
  timers: ManualTimers;
  logs: McpLogEntry[];
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const launcher = new RecordingLauncher(holds);
  const timers = new ManualTimers(new ManualClock());
  const scratch = await Deno.makeTempDir();
  const logs: McpLogEntry[] = [];
  const inst = new McpServerInstance({
    spec: SPEC,
    launcher,
    scope: scope("s1"),
    scratchDir: scratch,
    timers,
    clock: new ManualClock(),
    log: (e) => logs.push(e),
    idleTimeoutMs: 0,
    ...extra,
  });
  return {
    inst,
    launcher,
    timers,
    logs,
    async [Symbol.asyncDispose]() {
      await inst.close();
      await Deno.remove(scratch, { recursive: true });
    },
  };
}

/** Lets the calls in flight make progress (pipe I/O), never longer than `ms`. */
async function settled<T>(p: Promise<T>, ms = 20_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Still waiting after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
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
  await using f = await fixture(true);
  const { inst, launcher, timers } = f;
  const s1 = scope("s1");
  const s2 = scope("s2");
  await t.step("a call of its session starts it over that session", async () => {
    await settled(inst.call("echo", {}, { scope: s1 }));
    assert.deepEqual(launcher.sessions, ["s1"]);
    assert.equal(inst.scope?.session, "s1");
  });
  await t.step(
    "a later call of the current session that a call in flight waits for goes in after the grace",
    async () => {
      const order: string[] = [];
      const slow = inst.call("slow", {}, { scope: s1 }).then(() => order.push("s1 slow"));
      const other = inst.call("echo", {}, { scope: s2 }).then(() => order.push("s2 echo"));
      // s1's release comes after s2's pending switch: it waits behind it, until the grace ends
      // (the slow call waits for it: without the grace, a deadlock).
      const release = inst.call("release", {}, { scope: s1 }).then(() => order.push("s1 release"));
      assert.equal(inst.queued, 2);
      timers.advance(SWITCH_GRACE_MS);
      assert.equal(inst.queued, 1, "only s2's call still waits");
      await settled(Promise.all([slow, other, release]));
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
    await settled(inst.call("echo", {}, { scope: s1 }));
    assert.deepEqual(launcher.sessions, ["s1", "s2", "s1"]);
  });
});

Deno.test("McpServerInstance.call() admits calls in FIFO order once a switch is pending", async (t) => {
  await using f = await fixture(true);
  const { inst, launcher } = f;
  const s1 = scope("s1");
  const s2 = scope("s2");
  await settled(inst.call("echo", {}, { scope: s1 }));
  await t.step(
    "a waiting call of another session runs after the calls admitted before it, not after later ones",
    async () => {
      const order: string[] = [];
      const abort = new AbortController();
      const slow = inst.call("slow", {}, { scope: s1, signal: abort.signal }).catch((e) => {
        order.push("s1 slow");
        assert.equal(e.code, McpCode.MCP_CANCELLED);
      });
      const other = inst.call("echo", {}, { scope: s2 }).then(() => order.push("s2 echo"));
      const late = inst.call("echo", {}, { scope: s1 }).then(() => order.push("s1 late"));
      assert.equal(inst.inFlight, 1, "the late s1 call did not go in");
      assert.equal(inst.queued, 2);
      abort.abort();
      await settled(Promise.all([slow, other, late]));
      assert.deepEqual(order, ["s1 slow", "s2 echo", "s1 late"]);
      assert.deepEqual(launcher.sessions, ["s1", "s2", "s1"]);
    },
  );
  await t.step("after a switch, the new session's queued calls go in together", async () => {
    const order: string[] = [];
    const abort = new AbortController();
    // It works on s1 now; a slow s1 call holds it while both sessions queue alternately.
    const slow = inst.call("slow", {}, { scope: s1, signal: abort.signal }).catch(() => {});
    const calls = [["s2", "a"], ["s1", "b"], ["s2", "c"], ["s1", "d"]].map(([s, n]) =>
      inst.call("echo", { n }, { scope: scope(s) }).then(() => order.push(`${s} ${n}`))
    );
    assert.equal(inst.queued, 4);
    abort.abort();
    await settled(Promise.all([slow, ...calls]));
    assert.deepEqual(order.slice(0, 2).sort(), ["s2 a", "s2 c"]);
    assert.deepEqual(order.slice(2).sort(), ["s1 b", "s1 d"]);
    assert.deepEqual(launcher.sessions, ["s1", "s2", "s1", "s2", "s1"], "two switches, not four");
  });
  await t.step("aborting a waiting call takes it out of the queue", async () => {
    const abort = new AbortController();
    const slow = inst.call("slow", {}, { scope: s1, signal: abort.signal }).catch(() => {});
    const waiting = new AbortController();
    const gone = inst.call("echo", {}, { scope: s2, signal: waiting.signal });
    const next = inst.call("echo", {}, { scope: s1 });
    waiting.abort();
    await assert.rejects(gone, (e: { code?: string }) => e.code === McpCode.MCP_CANCELLED);
    assert.equal(inst.queued, 0, "the s1 call behind it went in");
    abort.abort();
    await settled(Promise.all([slow, next]));
  });
});

Deno.test("McpServerInstance attributes a server's requests to the scope of the calls in flight", async (t) => {
  const asked: string[] = [];
  await using f = await fixture(false, {
    onElicit: (_params, _signal, caller) => {
      asked.push(caller?.session ?? "none");
      return Promise.resolve({ action: "accept", content: { colour: "red" } });
    },
  });
  const { inst, launcher, logs } = f;
  await t.step(
    "unsandboxed, another session's call waits: the elicitation is the first's",
    async () => {
      const order: string[] = [];
      const ask = inst.call("ask", {}, { scope: scope("s1") }).then(() => order.push("s1 ask"));
      const other = inst.call("echo", {}, { scope: scope("s2") }).then(() => order.push("s2 echo"));
      assert.equal(inst.scope?.session, "s1", "the scope does not move while s1's call runs");
      await settled(Promise.all([ask, other]));
      assert.deepEqual(asked, ["s1"]);
      assert.deepEqual(order, ["s1 ask", "s2 echo"]);
      assert.equal(inst.scope?.session, "s2");
      assert.deepEqual(launcher.sessions, ["s1"], "unsandboxed: no restart on a switch");
    },
  );
  await t.step("the next session's elicitation and log lines are its own", async () => {
    const r = await settled(inst.call("ask", {}, { scope: scope("s2") }));
    assert.match(JSON.stringify(r.content), /red/);
    assert.deepEqual(asked, ["s1", "s2"]);
    await settled(inst.call("log", {}, { scope: scope("s2") }));
    const line = logs.find((l) => l.fields?.stream === "mcp" && l.message === "careful");
    assert.equal(line?.fields?.session, "s2");
    assert.equal(inst.caller, undefined, "no call in flight");
  });
});
