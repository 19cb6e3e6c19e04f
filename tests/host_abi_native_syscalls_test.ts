/**
 * Proves the host calls of `process`, `http` and `net` through the real path: the all-imports
 * guest (`_abi_guest.ts`) in a permission-less worker of the real engine, the dispatcher, the
 * manifest gate, the security pipeline, the audit log and the session overlays — with a real
 * `NativeSandbox` (`PROCESS_SERVICE`), a loopback HTTP server the test starts and a unix socket
 * client. For each subsystem: the allowed path (declared → OK and the effect happened) and the
 * denied path (not declared → DENIED, an audit entry of layer `manifest`, and no effect).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_CONFIG } from "../kernel/config/mod.ts";
import { NativeSandbox, sandboxStatus } from "../kernel/sandbox/mod.ts";
import { decodeFields, encodeU32, PENDING_FUNCTIONS } from "../host_abi/mod.ts";
import {
  expectOk as ok,
  expectStatus as status,
  manifestDenials,
  withKernel,
} from "./_abi_fixture.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();

const sandbox = await sandboxStatus();
if (!sandbox.available) console.log(`Skipping the process host calls: ${sandbox.reason}`);

/** Polls `probe` (a host call), yielding to the event loop in between, until it has a value. */
async function poll<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100_000; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 0));
  }
  throw new Error("condition not reached");
}

const u32 = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
const command = (argv: string[]) => JSON.stringify({ argv });

const nativeSandbox = () =>
  new NativeSandbox({ policy: structuredClone(DEFAULT_CONFIG.security.policy) });

Deno.test("the process, http and net rows are in the table: nothing is pending", () => {
  assert.deepEqual(PENDING_FUNCTIONS, []);
});

Deno.test({
  name: "process_* with host_process: the command runs in the sandbox over the session overlay",
  ignore: !sandbox.available,
  async fn(t) {
    await withKernel(async (k) => {
      await Deno.writeTextFile(join(k.workspace, "a.txt"), "lower\n");
      const runner = await k.load("runner", `host_process = ["sh"]\nallow_persistent = true`);
      const overlay = await k.overlay();

      await t.step(
        "process_spawn: a written file lands in the overlay, not the workspace",
        async () => {
          const reply = ok(
            await runner.call("process_spawn", [
              command(["sh", "-c", "echo hi > out.txt; cat a.txt"]),
            ]),
          ).json<Record<string, unknown>>();
          assert.equal(reply.code, 0);
          assert.equal(reply.stdout, "lower\n");
          assert.equal(reply.sandboxed, true);
          assert.deepEqual(reply.changed, ["out.txt"]);
          assert.equal(dec.decode(await overlay.readFile("out.txt")), "hi\n");
          assert.deepEqual((await overlay.diff()).map((c) => c.path), ["out.txt"]);
          await assert.rejects(Deno.lstat(join(k.workspace, "out.txt")), Deno.errors.NotFound);
        },
      );

      await t.step(
        "process_spawn: stdin reaches the command; an exit code is a reply",
        async () => {
          const reply = ok(
            await runner.call("process_spawn", [
              command(["sh", "-c", "cat; exit 3"]),
              "piped\n",
            ]),
          ).json<Record<string, unknown>>();
          assert.equal(reply.code, 3);
          assert.equal(reply.stdout, "piped\n");
        },
      );

      await t.step("the pipeline was asked with a process.spawn of the whole argv", async () => {
        const allowed = (await k.auditEntries())
          .filter((e) => e.action === "process.spawn" && e.decision === "allowed");
        assert.deepEqual(allowed.map((e) => [e.resource, JSON.parse(e.details || "{}").argv]), [
          ["process:sh", ["sh", "-c", "echo hi > out.txt; cat a.txt"]],
          ["process:sh", ["sh", "-c", "cat; exit 3"]],
        ]);
        assert.equal(k.approvals.length, 2, "guided mode asked the human about each command");
      });

      await t.step("process_spawn_background, read_logs and kill round trip", async () => {
        const started = ok(
          await runner.call("process_spawn_background", [
            command(["sh", "-c", "echo started; exec sleep 60"]),
          ]),
        ).json<{ handle: number; pid: number; sandboxed: boolean }>();
        assert.equal(started.sandboxed, true);
        const handle = encodeU32(started.handle);
        const logs = await poll(async () => {
          const page = ok(await runner.call("process_read_logs", [handle])).json<
            { chunks: { stream: string; text: string }[]; running: boolean }
          >();
          return page.chunks.length > 0 ? page : undefined;
        });
        assert.deepEqual(logs.chunks.map((c) => [c.stream, c.text]), [["stdout", "started\n"]]);
        assert.equal(logs.running, true);
        assert.deepEqual(
          ok(await runner.call("process_kill", [handle, "SIGKILL"])).json(),
          { running: true, released: false },
        );
        const exit = await poll(async () => {
          const page = ok(await runner.call("process_read_logs", [handle])).json<
            { running: boolean; exit?: { killed: boolean } }
          >();
          return page.running ? undefined : page.exit;
        });
        assert.equal(exit.killed, true);
        assert.deepEqual(
          ok(await runner.call("process_kill", [handle])).json(),
          { running: false, released: true },
        );
        status(await runner.call("process_read_logs", [handle]), "NOT_FOUND");
      });

      await t.step("a program the policy blocks is DENIED by the pipeline, not run", async () => {
        status(
          await runner.call("process_spawn", [command(["sh", "-c", "sudo id > sudo.txt"])]),
          "DENIED",
        );
        const last = (await k.auditEntries()).at(-1);
        assert.deepEqual([last?.action, last?.decision, last?.layer], [
          "process.spawn",
          "denied",
          "policy",
        ]);
        assert.equal(await overlay.exists("sudo.txt"), false);
      });
    }, { native: { process: { sandbox: nativeSandbox() } } });
  },
});

Deno.test("process_* without host_process: DENIED and audited before anything runs", async () => {
  await withKernel(async (k) => {
    const git = await k.load("git-only", `host_process = ["git"]`);
    const none = await k.load("none");
    status(
      await git.call("process_spawn", [command(["sh", "-c", "echo x > denied.txt"])]),
      "DENIED",
      /^Capsule "git-only" may not .*"sh".*host_process/,
    );
    status(
      await none.call("process_spawn_background", [command(["sh", "-c", "sleep 1"])]),
      "DENIED",
    );
    status(
      await git.call("process_spawn_background", [command(["git", "status"])]),
      "DENIED",
      /allow_persistent/,
    );
    const denials = await manifestDenials(k);
    assert.deepEqual(denials.map(([action, , rule]) => [action, rule]), [
      ["host.process_spawn", "host_process"],
      ["host.process_spawn_background", "host_process"],
      ["host.process_spawn_background", "allow_persistent"],
    ]);
    assert.equal(denials[0][1], "sh");
    const entries = await k.auditEntries();
    assert.equal(entries.filter((e) => e.action === "process.spawn").length, 0, "never asked");
    assert.equal(await (await k.overlay()).exists("denied.txt"), false);
    await assert.rejects(Deno.lstat(join(k.workspace, "denied.txt")), Deno.errors.NotFound);
  }, { native: { process: { sandbox: nativeSandbox() } } });
});

Deno.test("process_spawn declared but without a PROCESS_SERVICE is UNAVAILABLE", async () => {
  await withKernel(async (k) => {
    const runner = await k.load("runner", `host_process = ["sh"]`);
    status(await runner.call("process_spawn", [command(["sh", "-c", "true"])]), "UNAVAILABLE");
  });
});

/** A loopback server: `/hello` echoes, `/sse` streams events the test pushes. */
function startServer() {
  const events: ReadableStreamDefaultController<Uint8Array>[] = [];
  const seen: { method: string; path: string; test: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push({ method: req.method, path: url.pathname, test: req.headers.get("x-test") });
    if (url.pathname === "/sse") {
      const body = new ReadableStream<Uint8Array>({ start: (c) => void events.push(c) });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    }
    return new Response(`hello ${req.method} ${url.pathname}`, { headers: { "x-reply": "yes" } });
  });
  return { server, port: server.addr.port, events, seen };
}

Deno.test("http_* with http and an exact net entry: requests reach the loopback server", async (t) => {
  const s = startServer();
  try {
    await withKernel(async (k) => {
      const fetcher = await k.load("fetcher", `http = true\nnet = ["127.0.0.1:${s.port}"]`);

      await t.step("http_request returns the status, headers and whole body", async () => {
        const reply = ok(
          await fetcher.call("http_request", [
            JSON.stringify({ url: `http://127.0.0.1:${s.port}/hello`, headers: { "X-Test": "1" } }),
          ]),
        );
        const [meta, body] = decodeFields(reply.body);
        const head = JSON.parse(dec.decode(meta)) as { status: number; headers: string[][] };
        assert.equal(head.status, 200);
        assert.ok(head.headers.some(([name, value]) => name === "x-reply" && value === "yes"));
        assert.equal(dec.decode(body), "hello GET /hello");
        assert.deepEqual(s.seen, [{ method: "GET", path: "/hello", test: "1" }]);
      });

      await t.step("the request passed the pipeline as net.request for host:port", async () => {
        const asked = (await k.auditEntries()).filter((e) => e.action === "net.request");
        assert.equal(asked.filter((e) => e.decision === "allowed").length, 1);
        assert.ok(asked.every((e) => e.decision !== "denied"));
      });

      await t.step("http_stream_start/read/close read an SSE response in pieces", async () => {
        const started = ok(
          await fetcher.call("http_stream_start", [
            JSON.stringify({ url: `http://127.0.0.1:${s.port}/sse` }),
          ]),
        ).json<{ handle: number; status: number; headers: string[][] }>();
        assert.equal(started.status, 200);
        assert.ok(
          started.headers.some(([n, v]) => n === "content-type" && v === "text/event-stream"),
        );
        const handle = encodeU32(started.handle);
        s.events[0].enqueue(enc.encode("data: one\n\n"));
        assert.equal(ok(await fetcher.call("http_stream_read", [handle])).text, "data: one\n\n");
        s.events[0].enqueue(enc.encode("data: two\n\n"));
        assert.equal(ok(await fetcher.call("http_stream_read", [handle])).text, "data: two\n\n");
        s.events[0].close();
        status(await fetcher.call("http_stream_read", [handle]), "CLOSED");
        ok(await fetcher.call("http_stream_close", [handle]));
        status(await fetcher.call("http_stream_read", [handle]), "NOT_FOUND");
      });
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("http_* without the capability: DENIED, audited, and the server sees nothing", async () => {
  const s = startServer();
  try {
    await withKernel(async (k) => {
      const other = await k.load("other", `http = true\nnet = ["example.com:443"]`);
      const wildcard = await k.load("wildcard", `http = true\nnet = ["*:${s.port}"]`);
      const nohttp = await k.load("nohttp");
      const url = JSON.stringify({ url: `http://127.0.0.1:${s.port}/hello` });
      status(await other.call("http_request", [url]), "DENIED", /net/);
      status(await other.call("http_stream_start", [url]), "DENIED", /net/);
      status(await nohttp.call("http_request", [url]), "DENIED", /http/);
      status(
        await wildcard.call("http_request", [url]),
        "DENIED",
        /loopback address 127\.0\.0\.1/,
      );
      assert.deepEqual(s.seen, [], "the server saw no request");
      assert.deepEqual((await manifestDenials(k)).map(([action, , rule]) => [action, rule]), [
        ["host.http_request", "net"],
        ["host.http_stream_start", "net"],
        ["host.http_request", "http"],
      ]);
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("net_* with net_bind: a client talks to the capsule over its unix socket", async (t) => {
  await withKernel(async (k) => {
    const bridge = await k.load("bridge", `net_bind = ["unix:chat"]`);
    const home = (await k.sessionVfs()).roots.home!;
    const bound = ok(await bridge.call("net_bind_unix", ["chat"])).json<
      { handle: number; path: string }
    >();
    const listener = encodeU32(bound.handle);

    await t.step("net_bind_unix places the socket in the principal's home tmp", async () => {
      assert.equal(bound.path, join(home, ".local", "tmp", "sockets", "bridge", "chat"));
      assert.equal((await Deno.lstat(bound.path)).isSocket, true);
    });

    await t.step("net_poll_accept answers empty when no client waits", async () => {
      assert.equal(ok(await bridge.call("net_poll_accept", [listener])).body.length, 0);
    });

    const client = await Deno.connect({ transport: "unix", path: bound.path });
    try {
      let stream: Uint8Array = new Uint8Array();
      await t.step("net_accept takes the client", async () => {
        stream = encodeU32(u32(ok(await bridge.call("net_accept", [listener])).body));
      });

      await t.step("net_read and net_write carry bytes both ways", async () => {
        await client.write(enc.encode("hello"));
        assert.equal(ok(await bridge.call("net_read", [stream])).text, "hello");
        assert.equal(u32(ok(await bridge.call("net_write", [stream, "world"])).body), 5);
        const buf = new Uint8Array(16);
        const n = await client.read(buf);
        assert.equal(dec.decode(buf.subarray(0, n ?? 0)), "world");
      });

      await t.step("the peer closing is CLOSED; net_close_stream frees the stream", async () => {
        client.close();
        status(await bridge.call("net_read", [stream]), "CLOSED");
        ok(await bridge.call("net_close_stream", [stream]));
        status(await bridge.call("net_read", [stream]), "NOT_FOUND");
      });
    } finally {
      try {
        client.close();
      } catch {
        // closed by the step
      }
    }

    await t.step("net_close_stream on the listener removes the socket file", async () => {
      ok(await bridge.call("net_close_stream", [listener]));
      await assert.rejects(Deno.lstat(bound.path), Deno.errors.NotFound);
    });
  });
});

Deno.test("net_bind_unix without net_bind: DENIED, audited, and no socket is made", async () => {
  await withKernel(async (k) => {
    const none = await k.load("none");
    const other = await k.load("other", `net_bind = ["unix:other"]`);
    status(await none.call("net_bind_unix", ["chat"]), "DENIED", /net_bind/);
    status(await other.call("net_bind_unix", ["unix:chat"]), "DENIED", /net_bind/);
    assert.deepEqual(await manifestDenials(k), [
      ["host.net_bind_unix", "unix:chat", "net_bind"],
      ["host.net_bind_unix", "unix:chat", "net_bind"],
    ]);
    const sockets = join((await k.sessionVfs()).roots.home!, ".local", "tmp", "sockets");
    await assert.rejects(Deno.lstat(sockets), Deno.errors.NotFound);
  });
});
