import assert from "node:assert/strict";
import { AuditLog } from "../audit/mod.ts";
import { hasCode } from "../errors.ts";
import { KeyPair } from "../crypto/mod.ts";
import { principalId } from "../identity/mod.ts";
import { SqliteStore } from "../storage/mod.ts";
import { bootDaemon, type Daemon } from "./daemon.ts";
import { DaemonClient } from "./daemon_client.ts";
import { runPaths } from "./run_paths.ts";
import type { EventFrame } from "./protocol.ts";
import { FrameDecoder } from "./frame_codec.ts";

const env = (vars: Record<string, string> = {}) => ({ get: (k: string) => vars[k] });

async function tempHome(): Promise<string> {
  return await Deno.makeTempDir({ dir: "/tmp", prefix: "ad" });
}

async function connect(d: Daemon, extra: Partial<Parameters<typeof DaemonClient.connect>[1]> = {}) {
  const token = (await Deno.readTextFile(d.paths.token)).trim();
  return await DaemonClient.connect(d.paths.socket, { token, client: "test", ...extra });
}

function kernelCtx(principal: string) {
  return {
    principal: principalId(principal),
    source: { kind: "kernel", name: "orchestrator" },
  } as const;
}

Deno.test("bootDaemon() serves the protocol in-process", async (t) => {
  const home = await tempHome();
  const ended: string[] = [];
  const daemon = await bootDaemon({
    home,
    env: env(),
    echoLog: false,
    onSessionEnded: (p, s) => ended.push(`${p}/${s}`),
  });
  const token = (await Deno.readTextFile(daemon.paths.token)).trim();
  try {
    await t.step("run/ holds socket, token and ready with private modes", async () => {
      const p = runPaths(home);
      assert.equal((await Deno.stat(p.run)).mode! & 0o777, 0o700);
      assert.equal((await Deno.stat(p.token)).mode! & 0o777, 0o600);
      assert.equal((await Deno.lstat(p.socket)).isSocket, true);
      assert.equal((await Deno.stat(p.socket)).mode! & 0o077, 0);
      assert.match((await Deno.readTextFile(p.token)).trim(), /^[0-9a-f]{64}$/);
      const ready = JSON.parse(await Deno.readTextFile(p.ready));
      assert.equal(ready.pid, Deno.pid);
      assert.equal(ready.protocol, 1);
    });

    await t.step("hello → welcome with the default principal and a fresh session", async () => {
      const c = await connect(daemon);
      assert.equal(c.welcome.principal, "default");
      assert.match(c.welcome.session, /^[0-9a-f-]{36}$/);
      assert.equal(c.welcome.pid, Deno.pid);
      const s = await c.call<{ connections: { total: number }; capsules: unknown[] }>("status");
      assert.equal(s.connections.total, 1);
      assert.deepEqual(s.capsules, []);
      await c.close();
    });

    await t.step("a second boot for the same home is refused", async () => {
      await assert.rejects(
        () => bootDaemon({ home, env: env(), echoLog: false }),
        (e) =>
          hasCode(e, "DAEMON_ALREADY_RUNNING") && (e as Error).message.includes(`PID ${Deno.pid}`),
      );
      assert.equal((await Deno.lstat(daemon.paths.socket)).isSocket, true); // untouched
    });

    await t.step("events reach only the connection's principal and session", async () => {
      const a = await connect(daemon, { session: "sa" });
      const b = await connect(daemon, { session: "sb" });
      const alice = await connect(daemon, { principal: "alice", session: "sa" });
      const subA = await a.subscribe("agent.v1.*");
      const subB = await b.subscribe("agent.v1.*");
      const subAlice = await alice.subscribe("agent.v1.*");
      await daemon.bus.publish("agent.v1.stream.delta", { session: "sa", text: "for a" }, {
        ctx: kernelCtx("default"),
        request_id: "r1",
      });
      await daemon.bus.publish("agent.v1.response", { note: "principal-wide" }, {
        ctx: kernelCtx("default"),
        end_of_stream: true,
      });
      const first = (await subA.next()) as EventFrame;
      assert.equal(first.topic, "agent.v1.stream.delta");
      assert.deepEqual(first.payload, { session: "sa", text: "for a" });
      assert.equal(first.session, "sa");
      assert.equal(first.principal, "default");
      assert.equal(first.source, "kernel:orchestrator");
      assert.equal(first.request_id, "r1");
      assert.equal((await subA.next())?.topic, "agent.v1.response");
      // b (other session) only sees the principal-wide event; alice sees nothing of default's.
      const onlyB = (await subB.next()) as EventFrame;
      assert.equal(onlyB.topic, "agent.v1.response");
      assert.equal(onlyB.end_of_stream, true);
      await daemon.bus.publish("agent.v1.response", { session: "sa", text: "for alice" }, {
        ctx: kernelCtx("alice"),
      });
      assert.deepEqual((await subAlice.next())?.payload, { session: "sa", text: "for alice" });
      await subA.close();
      await Promise.all([a.close(), b.close(), alice.close()]);
    });

    await t.step(
      "publish: the daemon stamps principal and session; the ACL refuses others",
      async () => {
        const c = await connect(daemon, { session: "sp" });
        const seen: { principal: string; payload: unknown; source: string }[] = [];
        const l = daemon.bus.listen("user.v1.*", (m) =>
          seen.push({
            principal: m.principal,
            payload: m.payload.kind === "json" ? m.payload.value : null,
            source: `${m.source.kind}:${m.source.name}`,
          }));
        const r = await c.publish("user.v1.prompt", { text: "hi", session: "forged" });
        assert.equal((r as { outcome: string }).outcome, "delivered");
        l.close();
        assert.deepEqual(seen, [{
          principal: "default",
          payload: { text: "hi", session: "sp" },
          source: `client:${c.welcome.connection}`,
        }]);
        await assert.rejects(
          () => c.publish("tool.v1.execute.shell", { cmd: "ls" }),
          (e) =>
            hasCode(e, "DAEMON_REMOTE") &&
            (e as { data: { code: string } }).data.code === "FORBIDDEN",
        );
        await assert.rejects(
          () => c.call("publish", { topic: "user.v1.prompt", payload: {}, principal: "root" }),
          /Unknown parameter "principal".*the daemon stamps principal and session/,
        );
        await assert.rejects(
          () => c.call("subscribe", { pattern: "tool.v1.*" }),
          (e) => (e as { data: { code: string } }).data.code === "FORBIDDEN",
        );
        await assert.rejects(
          () => c.call("frobnicate"),
          (e) => (e as { data: { code: string } }).data.code === "METHOD_NOT_FOUND",
        );
        await c.close();
      },
    );

    await t.step("management goes over astrid.v1.request.*", async () => {
      const c = await connect(daemon);
      assert.deepEqual(await c.call("management", { request: "ListCapsules" }), []);
      assert.deepEqual(await c.call("management", { request: "get_commands" }), []);
      await assert.rejects(
        () => c.call("management", { request: "GetCapsuleMetadata", params: { name: "x" } }),
        (e) => (e as { data: { code: string } }).data.code === "NOT_FOUND",
      );
      await assert.rejects(
        () => c.call("management", { request: "InstallCapsule" }),
        (e) => (e as { data: { code: string } }).data.code === "METHOD_NOT_FOUND",
      );
      // A session bound to no workspace cannot name one: the daemon drops the client's.
      await assert.rejects(
        () =>
          c.call("management", {
            request: "TrustCapsule",
            params: { name: "x", workspace_id: "w-someone-elses" },
          }),
        (e) =>
          (e as { data: { code: string } }).data.code === "INVALID_PARAMS" &&
          /"workspace_id" null/.test((e as Error).message),
      );
      await c.close();
    });

    await t.step(
      "--principal creates the principal once, audited, and lays out its home",
      async () => {
        const c = await connect(daemon, { principal: "bob" });
        const d = await connect(daemon, { principal: "bob" });
        assert.equal(c.welcome.principal, "bob");
        await Promise.all([c.close(), d.close()]);
        assert.equal((await Deno.stat(`${home}/home/bob/.local/capsules`)).isDirectory, true);
        const bob = await daemon.audit.list("bob");
        assert.equal(bob.length, 1);
        assert.equal(bob[0].action, "identity.create");
        await assert.rejects(
          () => connect(daemon, { principal: "Not Valid" }),
          (e) =>
            hasCode(e, "DAEMON_PROTOCOL") &&
            (e as { data: { code: string } }).data.code === "INVALID_HELLO",
        );
      },
    );

    await t.step("the session-ended hook runs when its last connection closes", async () => {
      ended.length = 0;
      const a = await connect(daemon, { session: "end-me" });
      const b = await connect(daemon, { session: "end-me" });
      await a.close();
      await waitFor(() => daemon.connections.list().every((c) => c.id !== a.welcome.connection));
      assert.deepEqual(ended, []);
      await b.close();
      await waitFor(() => ended.length === 1);
      assert.deepEqual(ended, ["default/end-me"]);
    });

    await t.step("a wrong token is refused and audited", async () => {
      await assert.rejects(
        () =>
          DaemonClient.connect(daemon.paths.socket, { token: "0".repeat(64), principal: "eve" }),
        (e) => hasCode(e, "DAEMON_AUTH_FAILED"),
      );
      const rows = await daemon.audit.list("default");
      const last = rows[rows.length - 1];
      assert.equal(last.layer, "auth");
      assert.equal(last.decision, "denied");
      assert.equal(last.action, "daemon.connect");
      assert.deepEqual(JSON.parse(last.details).claimed_principal, "eve");
    });

    await t.step("a workspace gets an id on first use; a session stays bound to it", async () => {
      const ws = await Deno.makeTempDir({ dir: "/tmp", prefix: "aw" });
      const ws2 = await Deno.makeTempDir({ dir: "/tmp", prefix: "aw" });
      try {
        const c = await connect(daemon, { session: "bound", workspace: ws });
        const id = c.welcome.workspace!.id;
        assert.match(id, /^[0-9a-f]{32}$/);
        assert.equal((await Deno.readTextFile(`${ws}/.astrid/workspace-id`)).trim(), id);
        await assert.rejects(
          () => connect(daemon, { session: "bound", workspace: ws2 }),
          /is bound to workspace/,
        );
        await c.close();
      } finally {
        await Deno.remove(ws, { recursive: true });
        await Deno.remove(ws2, { recursive: true });
      }
    });

    await t.step("shutdown: bye to clients, then every run file is gone", async () => {
      const watcher = await connect(daemon);
      const c = await connect(daemon);
      assert.deepEqual(await c.call("shutdown", { reason: "test over" }), { stopping: true });
      const info = await daemon.closed;
      assert.equal(info.reason, "test over");
      assert.deepEqual(info.problems, []);
      assert.deepEqual(await watcher.closed, { kind: "bye", reason: "test over" });
      await c.closed;
      const p = runPaths(home);
      for (const f of [p.socket, p.token, p.ready, p.lock]) {
        await assert.rejects(() => Deno.lstat(f), Deno.errors.NotFound, f);
      }
    });

    await t.step("the audit chain the daemon wrote verifies", async () => {
      const store = await SqliteStore.open(`${home}/var/state.db`);
      try {
        const key = await KeyPair.load(`${home}/keys/runtime.key`);
        const log = new AuditLog(store, { signer: key });
        for (const p of await log.principals()) {
          assert.equal((await log.verify(p, key.publicKey)).ok, true, p);
        }
      } finally {
        await store.close();
      }
    });

    await t.step("the log names events but never the token", async () => {
      const text = await Deno.readTextFile(`${home}/log/daemon.log`);
      assert.match(text, /Ready/);
      assert.match(text, /Stopped/);
      assert.equal(text.includes(token), false);
    });
  } finally {
    await daemon.shutdown("test cleanup");
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("bootDaemon() refuses a home whose socket path is too long", async () => {
  const base = await tempHome();
  const home = `${base}/${"h".repeat(100)}`;
  try {
    await assert.rejects(
      () => bootDaemon({ home, env: env(), echoLog: false }),
      (e) =>
        hasCode(e, "DAEMON_SOCKET_PATH_TOO_LONG") &&
        /set ASTRID_HOME to a shorter path/.test((e as Error).message),
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("an ephemeral daemon stops after its last client leaves", async () => {
  const home = await tempHome();
  const daemon = await bootDaemon({
    home,
    env: env(),
    echoLog: false,
    ephemeral: true,
    ephemeralGraceMs: 10,
  });
  try {
    const c = await connect(daemon);
    assert.equal((await c.call<{ ephemeral: boolean }>("status")).ephemeral, true);
    await c.close();
    const info = await daemon.closed;
    assert.equal(info.reason, "ephemeral: the last client left");
  } finally {
    await daemon.shutdown("test cleanup");
    await Deno.remove(home, { recursive: true });
  }
});

async function waitFor(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("a silent connection is closed after the hello timeout; past the limit, refused", async () => {
  const home = await tempHome();
  const daemon = await bootDaemon({
    home,
    env: env(),
    echoLog: false,
    helloTimeoutMs: 30,
    maxConnections: 2,
  });
  const read = async (conn: Deno.Conn) => {
    const dec = new FrameDecoder();
    const frames: Record<string, unknown>[] = [];
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return frames;
      frames.push(...dec.push(buf.subarray(0, n)));
    }
  };
  try {
    const silent = await Deno.connect({ transport: "unix", path: daemon.paths.socket });
    const frames = await read(silent);
    silent.close();
    assert.equal(frames[0].code, "HELLO_TIMEOUT");

    const a = await connect(daemon);
    const b = await connect(daemon);
    const third = await Deno.connect({ transport: "unix", path: daemon.paths.socket });
    const refused = await read(third);
    third.close();
    assert.equal(refused[0].code, "TOO_MANY_CONNECTIONS");
    assert.equal((await a.call<{ pid: number }>("status")).pid, Deno.pid);
    await Promise.all([a.close(), b.close()]);
  } finally {
    await daemon.shutdown("test cleanup");
    await Deno.remove(home, { recursive: true });
  }
});
