/**
 * Proves the wire protocol holds against a real daemon (started by the real `astrid start`) over
 * the real socket: the token is required and a refusal is audited, 200 concurrent in-process
 * clients all get correct answers, and malformed frames (garbage, an oversized length, bad
 * JSON, a request before hello, a wrong version) close only the offending connection while
 * another client keeps working.
 */
import assert from "node:assert/strict";
import {
  DaemonClient,
  type DaemonStatusWire,
  encodeFrame,
  FrameDecoder,
  PROTOCOL_VERSION,
} from "../kernel/daemon/mod.ts";
import { hasCode } from "../kernel/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

async function astrid(home: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, MAIN, ...args],
    env: { ASTRID_HOME: home, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function frame(body: string | Uint8Array): Uint8Array {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function lengthOnly(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** Writes `chunks` on a fresh raw connection and reads every frame until the daemon closes it. */
async function raw(socket: string, chunks: Uint8Array[]): Promise<Record<string, unknown>[]> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const frames: Record<string, unknown>[] = [];
  const dec = new FrameDecoder();
  const timer = setTimeout(() => conn.close(), 5_000);
  try {
    for (const c of chunks) await conn.write(c);
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      frames.push(...dec.push(buf.subarray(0, n)));
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer or the daemon
    }
  }
  return frames;
}

Deno.test("the wire protocol against a real daemon", async (t) => {
  const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "ap" });
  const socket = `${home}/run/system.sock`;
  try {
    const started = await astrid(home, ["start"]);
    assert.equal(started.code, 0, started.stderr);
    const token = (await Deno.readTextFile(`${home}/run/system.token`)).trim();
    const hello = (extra: Record<string, unknown> = {}) =>
      encodeFrame({ type: "hello", protocol: PROTOCOL_VERSION, token, client: "test", ...extra });
    const keeper = await DaemonClient.connect(socket, { token, client: "keeper" });
    const keeperWorks = async () => {
      const s = await keeper.call<DaemonStatusWire>("status");
      assert.equal(s.pid, keeper.welcome.pid);
    };

    await t.step("a wrong token is refused, and an audit row says so", async () => {
      await assert.rejects(
        () => DaemonClient.connect(socket, { token: "f".repeat(64), client: "intruder" }),
        (e) => hasCode(e, "DAEMON_AUTH_FAILED"),
      );
      const frames = await raw(socket, [encodeFrame({ type: "hello", protocol: 1, client: "x" })]);
      assert.equal(frames.length, 1);
      assert.equal(frames[0].code, "AUTH_FAILED"); // no token at all
      const shown = await astrid(home, ["audit", "show", "--json"]);
      assert.equal(shown.code, 0, shown.stderr);
      const rows = shown.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const denied = rows.filter((r) => r.layer === "auth" && r.decision === "denied");
      assert.equal(denied.length, 2);
      assert.equal(denied[0].principal, "default");
      assert.equal(denied[0].action, "daemon.connect");
      assert.equal(denied[0].resource, `socket:${socket}`);
      assert.equal(JSON.parse(denied[0].details).client, "intruder");
      const verify = await astrid(home, ["audit", "verify"]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      await keeperWorks();
    });

    await t.step("200 concurrent clients each get a correct status", async () => {
      const clients = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) => DaemonClient.connect(socket, { token, client: `c${i}` }),
        ),
      );
      const statuses = await Promise.all(clients.map((c) => c.call<DaemonStatusWire>("status")));
      for (const s of statuses) {
        assert.equal(s.pid, keeper.welcome.pid);
        assert.equal(s.home, home);
        assert.equal(s.connections.total, 201); // all 200 plus the keeper are attached
      }
      assert.equal(new Set(clients.map((c) => c.welcome.session)).size, 200);
      await Promise.all(clients.map((c) => c.close()));
      const deadline = Date.now() + 5_000;
      while ((await keeper.call<DaemonStatusWire>("status")).connections.total !== 1) {
        assert.ok(Date.now() < deadline, "the 200 connections were not released");
        await new Promise((r) => setTimeout(r, 20));
      }
    });

    await t.step("malformed frames close only that connection", async (t) => {
      const cases: [string, Uint8Array[], string][] = [
        [
          "HTTP garbage",
          [new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
          "FRAME_TOO_LARGE",
        ],
        ["an oversized length before hello", [lengthOnly(0xffffffff)], "FRAME_TOO_LARGE"],
        ["a hello over 64 KiB", [lengthOnly(64 * 1024 + 1)], "FRAME_TOO_LARGE"],
        ["bad JSON", [frame("{nope")], "MALFORMED_FRAME"],
        ["a zero length", [lengthOnly(0)], "MALFORMED_FRAME"],
        ["a JSON array", [frame("[1]")], "MALFORMED_FRAME"],
        [
          "a request before hello",
          [encodeFrame({ type: "request", id: 1, method: "status" })],
          "PROTOCOL_ERROR",
        ],
        ["a wrong protocol version", [
          encodeFrame({ type: "hello", protocol: 99, token, client: "x" }),
        ], "UNSUPPORTED_PROTOCOL"],
        ["bad JSON after hello", [hello(), frame("{nope")], "MALFORMED_FRAME"],
        ["over 16 MiB after hello", [hello(), lengthOnly(16 * 1024 * 1024 + 1)], "FRAME_TOO_LARGE"],
        ["a second hello", [hello(), hello()], "PROTOCOL_ERROR"],
        [
          "a request without id",
          [hello(), encodeFrame({ type: "request", method: "status" })],
          "PROTOCOL_ERROR",
        ],
      ];
      for (const [name, chunks, code] of cases) {
        await t.step(name, async () => {
          const frames = await raw(socket, chunks);
          const last = frames[frames.length - 1];
          assert.equal(last?.type, "error", JSON.stringify(frames));
          assert.equal(last.code, code, String(last.message));
          await keeperWorks();
        });
      }
    });

    await t.step("a valid request on a raw connection gets its response", async () => {
      const conn = await Deno.connect({ transport: "unix", path: socket });
      try {
        await conn.write(hello());
        await conn.write(encodeFrame({ type: "request", id: "a", method: "status" }));
        await conn.write(encodeFrame({ type: "request", id: "b", method: "nope" }));
        const dec = new FrameDecoder();
        const frames: Record<string, unknown>[] = [];
        const buf = new Uint8Array(65536);
        while (frames.length < 3) {
          const n = await conn.read(buf);
          if (n === null) break;
          frames.push(...dec.push(buf.subarray(0, n)));
        }
        assert.equal(frames[0].type, "welcome");
        const byId = new Map(frames.slice(1).map((f) => [f.id, f]));
        assert.equal((byId.get("a")?.result as DaemonStatusWire).pid, keeper.welcome.pid);
        assert.equal((byId.get("b")?.error as { code: string }).code, "METHOD_NOT_FOUND");
      } finally {
        conn.close();
      }
    });

    await t.step("stop ends the keeper with a bye", async () => {
      const stopped = await astrid(home, ["stop"]);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.deepEqual(await keeper.closed, { kind: "bye", reason: "astrid stop" });
    });
  } finally {
    const pid = Number.parseInt(
      await Deno.readTextFile(`${home}/run/system.lock`).catch(() => ""),
      10,
    );
    if (pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await Deno.remove(home, { recursive: true });
  }
});
