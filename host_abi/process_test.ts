import assert from "node:assert/strict";
import { join } from "node:path";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { DEFAULT_CONFIG } from "../kernel/config/mod.ts";
import { NativeSandbox, sandboxStatus } from "../kernel/sandbox/mod.ts";
import {
  type Authorization,
  describeAction,
  Policy,
  type SensitiveAction,
} from "../kernel/security/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { OverlayVfs } from "../kernel/vfs/mod.ts";
import { EventBus } from "../kernel/events/mod.ts";
import { encodeFields, encodeU32, type FieldInput, RequestReader } from "./encoding.ts";
import { ManifestSecurityGate } from "./gate.ts";
import { HandleTable } from "./handle_table.ts";
import type { HostCallContext, HostFunctionRow } from "./host_function.ts";
import { capsuleBus, createHostServices, provide, scopedKv } from "./host_services.ts";
import { DEFAULT_HOST_LIMITS } from "./limits.ts";
import {
  PROCESS_FUNCTIONS,
  PROCESS_SERVICE,
  processKill,
  processReadLogs,
  processSpawn,
  processSpawnBackground,
} from "./process.ts";
import { HostCallError, HostStatus } from "./status.ts";

const status = await sandboxStatus();
if (!status.available) console.log(`Skipping sandboxed process calls: ${status.reason}`);
const ignore = !status.available;
const policyConfig = DEFAULT_CONFIG.security.policy;

interface Fixture {
  ws: string;
  overlay: OverlayVfs;
  actions: SensitiveAction[];
  call(manifestCaps?: string, withService?: boolean): HostCallContext;
  dispose(): Promise<void>;
}

function manifest(caps: string) {
  return parseManifest(
    `[package]\nname = "runner"\nversion = "0.1.0"\n\n[capabilities]\n${caps}\n`,
    { file: "runner/Capsule.toml" },
  );
}

/** A security fake that applies the real policy and allows the rest. */
function policySecurity(actions: SensitiveAction[]) {
  const policy = Policy.for(policyConfig);
  return {
    authorize(action: SensitiveAction): Promise<Authorization> {
      actions.push(action);
      const block = policy.check(action, describeAction(action));
      return Promise.resolve({
        allowed: block === null,
        layer: block === null ? "mode" : "policy",
        rule: block?.rule ?? "autonomous/native",
        decider: block === null ? "mode" : "policy",
        reason: block?.reason ?? "allowed",
        cancelled: false,
        timedOut: false,
      } as unknown as Authorization);
    },
  };
}

async function fixture(files: Record<string, string> = {}): Promise<Fixture> {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const ws = join(base, "ws");
  await Deno.mkdir(ws);
  for (const [p, body] of Object.entries(files)) await Deno.writeTextFile(join(ws, p), body);
  const overlay = await OverlayVfs.open(ws, join(base, "overlay", "s1"));
  const actions: SensitiveAction[] = [];
  const sandbox = new NativeSandbox({ policy: policyConfig });
  const handles = new HandleTable();
  const bus = new EventBus();
  return {
    ws,
    overlay,
    actions,
    call(caps = `host_process = ["sh", "cat"]\nallow_persistent = true`, withService = true) {
      return {
        principal: "alice",
        capsule: "runner",
        manifest: manifest(caps),
        exportName: "run",
        session: { id: "s1", workspaceId: "w1", workspaceRoot: ws },
        signal: new AbortController().signal,
        clock: new ManualClock(),
        limits: DEFAULT_HOST_LIMITS,
        services: createHostServices({
          vfs: () => Promise.reject(new Error("unused")),
          kv: scopedKv(new MemoryStore(), "alice", "runner"),
          bus: capsuleBus(bus, { principal: "alice", capsule: "runner" }),
          security: policySecurity(actions),
          audit: { append: () => Promise.resolve() },
          handles,
          extensions: withService
            ? [provide(PROCESS_SERVICE, { sandbox, overlay: () => Promise.resolve(overlay) })]
            : [],
        }),
      };
    },
    async dispose() {
      await handles.closeAll();
      overlay.close();
      await Deno.remove(base, { recursive: true });
    },
  };
}

/** Parse → gate (the real manifest gate) → run, as the dispatcher does. */
async function call(
  row: HostFunctionRow,
  fields: readonly FieldInput[],
  ctx: HostCallContext,
): Promise<string> {
  const args = await row.parse(new RequestReader(encodeFields(fields)), ctx);
  const spec = await row.gate(args, ctx);
  const specs = spec === null ? [] : Array.isArray(spec) ? spec : [spec];
  for (const req of specs) {
    const denial = ManifestSecurityGate.for(ctx.manifest).check(req);
    if (denial !== null) throw new HostCallError(HostStatus.DENIED, denial.message);
  }
  const out = await row.run(args, ctx);
  return typeof out === "string" ? out : new TextDecoder().decode(out ?? new Uint8Array());
}

const rejectsWith = (s: HostStatus) => (e: unknown) => e instanceof HostCallError && e.status === s;
const cmd = (argv: string[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ argv, ...extra });

Deno.test("PROCESS_FUNCTIONS lists the four rows in table order", () => {
  assert.deepEqual(PROCESS_FUNCTIONS.map((r) => r.name), [
    "process_spawn",
    "process_spawn_background",
    "process_read_logs",
    "process_kill",
  ]);
});

Deno.test({
  name: "process_spawn runs over the session overlay and replies JSON",
  ignore,
  async fn(t) {
    const f = await fixture({ ".env": "SECRET\n", "a.txt": "a\n" });
    try {
      await t.step("writes land in the diff; the reply carries output and changes", async () => {
        const reply = JSON.parse(
          await call(processSpawn, [cmd(["sh", "-c", "echo hi > out.txt; cat a.txt"])], f.call()),
        );
        assert.equal(reply.code, 0);
        assert.equal(reply.stdout, "a\n");
        assert.equal(reply.sandboxed, true);
        assert.deepEqual(reply.changed, ["out.txt"]);
        assert.deepEqual(reply.masked, [".env"]);
        assert.deepEqual((await f.overlay.diff()).map((c) => c.path), ["out.txt"]);
        await assert.rejects(Deno.lstat(join(f.ws, "out.txt")), Deno.errors.NotFound);
      });
      await t.step("the stdin field reaches the command", async () => {
        const reply = JSON.parse(await call(processSpawn, [cmd(["cat"]), "piped\n"], f.call()));
        assert.equal(reply.stdout, "piped\n");
      });
      await t.step("the pipeline saw a process.spawn with the whole argv", () => {
        const spawn = f.actions.find((a) => a.kind === "process.spawn");
        assert.deepEqual(spawn && "argv" in spawn ? spawn.argv : null, [
          "sh",
          "-c",
          "echo hi > out.txt; cat a.txt",
        ]);
      });
      await t.step("binary output comes back in base64", async () => {
        const reply = JSON.parse(
          await call(processSpawn, [cmd(["sh", "-c", "printf '\\377\\376'"])], f.call()),
        );
        assert.equal(reply.stdout, undefined);
        assert.equal(reply.stdout_base64, "//4=");
      });
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "process_spawn is refused by the gate, the policy and the limits before anything runs",
  ignore,
  async fn(t) {
    const f = await fixture();
    try {
      await t.step("a program not in host_process: DENIED by the manifest gate", async () => {
        await assert.rejects(
          call(processSpawn, [cmd(["git", "status"])], f.call()),
          rejectsWith(HostStatus.DENIED),
        );
        assert.equal(f.actions.length, 0, "the gate decides before the pipeline");
      });
      await t.step("sudo anywhere in the argv: DENIED by the policy", async () => {
        await assert.rejects(
          call(processSpawn, [cmd(["sh", "-c", "echo x > pwned.txt && sudo id"])], f.call()),
          (e: unknown) => rejectsWith(HostStatus.DENIED)(e) && /privilege/.test(String(e)),
        );
        assert.deepEqual(await f.overlay.diff(), [], "nothing ran");
      });
      await t.step("a timeout over the limit: LIMIT_EXCEEDED", async () => {
        await assert.rejects(
          call(processSpawn, [cmd(["sh"], { timeout_ms: 99_999_999 })], f.call()),
          rejectsWith(HostStatus.LIMIT_EXCEEDED),
        );
      });
      await t.step("malformed commands: INVALID_ARGUMENT", async () => {
        for (const bad of ["[]", `{"argv":[]}`, `{"argv":["sh"],"shell":true}`, `{"argv":[1]}`]) {
          await assert.rejects(
            call(processSpawn, [bad], f.call()),
            rejectsWith(HostStatus.INVALID_ARGUMENT),
            bad,
          );
        }
      });
      await t.step("no process service in the kernel: UNAVAILABLE", async () => {
        await assert.rejects(
          call(processSpawn, [cmd(["sh", "-c", "true"])], f.call(undefined, false)),
          rejectsWith(HostStatus.UNAVAILABLE),
        );
      });
      await t.step("a bad cwd: INVALID_ARGUMENT", async () => {
        await assert.rejects(
          call(processSpawn, [cmd(["sh"], { cwd: "../.." })], f.call()),
          rejectsWith(HostStatus.INVALID_ARGUMENT),
        );
      });
    } finally {
      await f.dispose();
    }
  },
});

Deno.test({
  name: "process_spawn gives the network only to a capsule that declares net",
  ignore,
  async fn() {
    const bash = ["/bin/bash", "/usr/bin/bash"].find((p) => {
      try {
        return Deno.statSync(p).isFile;
      } catch {
        return false;
      }
    });
    if (bash === undefined) return console.log("Skipping: no bash for /dev/tcp");
    const f = await fixture();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepting = (async () => {
      for await (const conn of listener) conn.close();
    })();
    try {
      const port = (listener.addr as Deno.NetAddr).port;
      const connect = cmd(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected`]);
      const closed = JSON.parse(
        await call(processSpawn, [connect], f.call(`host_process = ["bash"]`)),
      );
      assert.notEqual(closed.code, 0);
      const open = JSON.parse(
        await call(
          processSpawn,
          [connect],
          f.call(`host_process = ["bash"]\nhttp = true\nnet = ["127.0.0.1:${port}"]`),
        ),
      );
      assert.equal(open.stdout, "connected\n");
    } finally {
      listener.close();
      await accepting.catch(() => {});
      await f.dispose();
    }
  },
});

Deno.test({
  name: "process_spawn_background, process_read_logs and process_kill manage a handle",
  ignore,
  async fn(t) {
    const f = await fixture();
    try {
      const ctx = f.call();
      await t.step("allow_persistent is required", async () => {
        await assert.rejects(
          call(processSpawnBackground, [cmd(["sh"])], f.call(`host_process = ["sh"]`)),
          rejectsWith(HostStatus.DENIED),
        );
      });
      const started = JSON.parse(
        await call(
          processSpawnBackground,
          [cmd(["sh", "-c", "echo one; echo two >&2; echo bg > bg.txt; exec sleep 1000"])],
          ctx,
        ),
      );
      assert.equal(typeof started.handle, "number");
      assert.equal(started.sandboxed, true);
      await t.step("logs are read after an offset", async () => {
        let page = { chunks: [] as { text: string; stream: string }[], next: 0 };
        for (let i = 0; i < 500 && page.chunks.map((c) => c.text).join("").length < 8; i++) {
          page = JSON.parse(await call(processReadLogs, [encodeU32(started.handle)], ctx));
          await new Promise((r) => setTimeout(r, 10));
        }
        const text = page.chunks.map((c) => c.text).join("");
        assert.ok(text.includes("one\n") && text.includes("two\n"), text);
        const again = JSON.parse(
          await call(processReadLogs, [encodeU32(started.handle), `{"since":${page.next}}`], ctx),
        );
        assert.deepEqual(again.chunks, []);
        assert.equal(again.running, true);
      });
      await t.step("kill stops it; its writes are folded; a second kill releases", async () => {
        const killed = JSON.parse(
          await call(processKill, [encodeU32(started.handle), "SIGTERM"], ctx),
        );
        assert.equal(killed.released, false);
        const held = ctx.services.handles.get<{ proc: { exited: Promise<unknown> } }>(
          "process",
          started.handle,
        );
        await held.proc.exited;
        const logs = JSON.parse(await call(processReadLogs, [encodeU32(started.handle)], ctx));
        assert.equal(logs.running, false);
        assert.equal(logs.exit.signal, "SIGTERM");
        assert.deepEqual(logs.exit.changed, ["bg.txt"]);
        assert.deepEqual((await f.overlay.diff()).map((c) => c.path), ["bg.txt"]);
        const released = JSON.parse(await call(processKill, [encodeU32(started.handle)], ctx));
        assert.deepEqual(released, { running: false, released: true });
        await assert.rejects(
          call(processReadLogs, [encodeU32(started.handle)], ctx),
          rejectsWith(HostStatus.NOT_FOUND),
        );
      });
      await t.step("an unknown signal is INVALID_ARGUMENT", async () => {
        await assert.rejects(
          call(processKill, [encodeU32(1), "SIGSTOP"], ctx),
          rejectsWith(HostStatus.INVALID_ARGUMENT),
        );
      });
    } finally {
      await f.dispose();
    }
  },
});
