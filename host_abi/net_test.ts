import assert from "node:assert/strict";
import { join } from "node:path";
import { parseManifest } from "../kernel/capsule/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { EventBus, ManualTimers } from "../kernel/events/mod.ts";
import { MemoryStore } from "../kernel/storage/mod.ts";
import { encodeFields, encodeU32, type FieldInput, RequestReader } from "./encoding.ts";
import { ManifestSecurityGate } from "./gate.ts";
import { HandleTable } from "./handle_table.ts";
import type { HostCallContext, HostFunctionRow, SessionVfs } from "./host_function.ts";
import { capsuleBus, createHostServices, provide, scopedKv } from "./host_services.ts";
import { HOST_TIMERS } from "./ipc.ts";
import { DEFAULT_HOST_LIMITS } from "./limits.ts";
import {
  NET_FUNCTIONS,
  netAccept,
  netBindUnix,
  netCloseStream,
  netPollAccept,
  netRead,
  netWrite,
} from "./net.ts";
import { HostCallError, HostStatus } from "./status.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Fixture {
  home: string;
  timers: ManualTimers;
  handles: HandleTable;
  call(netBind?: string[]): HostCallContext;
  dispose(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const home = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-net-" }));
  const timers = new ManualTimers(new ManualClock());
  const handles = new HandleTable();
  const vfs = { router: undefined, roots: { home } } as unknown as SessionVfs;
  return {
    home,
    timers,
    handles,
    call(netBind = ["unix:*"]) {
      return {
        principal: "alice",
        capsule: "bridge",
        manifest: parseManifest(
          `[package]\nname = "bridge"\nversion = "0.1.0"\n\n[capabilities]\nnet_bind = ${
            JSON.stringify(netBind)
          }\n`,
          { file: "bridge/Capsule.toml" },
        ),
        exportName: "run",
        session: { id: "s1", workspaceId: "w1", workspaceRoot: "/w" },
        signal: new AbortController().signal,
        clock: new ManualClock(),
        limits: DEFAULT_HOST_LIMITS,
        services: createHostServices({
          vfs: () => Promise.resolve(vfs),
          kv: scopedKv(new MemoryStore(), "alice", "bridge"),
          bus: capsuleBus(new EventBus(), { principal: "alice", capsule: "bridge" }),
          security: { authorize: () => Promise.reject(new Error("not sensitive")) },
          audit: { append: () => Promise.resolve() },
          handles,
          extensions: [provide(HOST_TIMERS, timers)],
        }),
      };
    },
    async dispose() {
      await handles.closeAll();
      await Deno.remove(home, { recursive: true });
    },
  };
}

async function invoke(
  row: HostFunctionRow,
  fields: readonly FieldInput[],
  call: HostCallContext,
): Promise<Uint8Array> {
  const args = await row.parse(new RequestReader(encodeFields(fields)), call);
  const spec = await row.gate(args, call);
  for (const req of spec === null ? [] : Array.isArray(spec) ? spec : [spec]) {
    const denial = ManifestSecurityGate.for(call.manifest).check(req);
    if (denial !== null) throw new HostCallError(HostStatus.DENIED, denial.message);
  }
  const out = await row.run(args, call);
  return typeof out === "string" ? enc.encode(out) : out ?? new Uint8Array();
}

const u32 = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
const rejectsWith = (s: HostStatus, re?: RegExp) => (e: unknown) =>
  e instanceof HostCallError && e.status === s && (re === undefined || re.test(e.message));

Deno.test("NET_FUNCTIONS lists the six rows in table order", () => {
  assert.deepEqual(NET_FUNCTIONS.map((r) => r.name), [
    "net_bind_unix",
    "net_accept",
    "net_poll_accept",
    "net_read",
    "net_write",
    "net_close_stream",
  ]);
});

Deno.test("net_* serve a unix socket in the principal's home tmp", async (t) => {
  const f = await fixture();
  const call = f.call();
  try {
    const bound = JSON.parse(dec.decode(await invoke(netBindUnix, ["chat"], call)));
    const expected = join(f.home, ".local", "tmp", "sockets", "bridge", "chat");
    await t.step("the socket is private to the principal and the capsule", async () => {
      assert.equal(bound.path, expected);
      const info = await Deno.lstat(expected);
      assert.equal(info.isSocket, true);
      assert.equal(info.mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(join(expected, ".."))).mode! & 0o777, 0o700);
    });
    await t.step("poll_accept answers empty when nobody waits", async () => {
      assert.equal((await invoke(netPollAccept, [encodeU32(bound.handle)], call)).length, 0);
    });
    const client = await Deno.connect({ transport: "unix", path: expected });
    let stream = 0;
    await t.step("a waiting client is accepted", async () => {
      stream = u32(await invoke(netAccept, [encodeU32(bound.handle)], call));
      assert.ok(stream > 0);
    });
    await t.step("bytes flow both ways", async () => {
      await client.write(enc.encode("hello"));
      assert.equal(dec.decode(await invoke(netRead, [encodeU32(stream)], call)), "hello");
      const wrote = u32(await invoke(netWrite, [encodeU32(stream), "world"], call));
      assert.equal(wrote, 5);
      const buf = new Uint8Array(16);
      const n = await client.read(buf);
      assert.equal(dec.decode(buf.subarray(0, n!)), "world");
    });
    await t.step("a read that times out loses nothing", async () => {
      const waiting = invoke(netRead, [encodeU32(stream), `{"timeout_ms": 1000}`], call);
      for (let i = 0; i < 20; i++) await Promise.resolve();
      f.timers.advance(1000);
      await assert.rejects(waiting, rejectsWith(HostStatus.TIMEOUT));
      await client.write(enc.encode("late"));
      assert.equal(dec.decode(await invoke(netRead, [encodeU32(stream)], call)), "late");
    });
    await t.step("the peer closing is CLOSED", async () => {
      client.close();
      await assert.rejects(
        invoke(netRead, [encodeU32(stream)], call),
        rejectsWith(HostStatus.CLOSED),
      );
      await invoke(netCloseStream, [encodeU32(stream)], call);
      assert.equal(f.handles.count("net_stream"), 0);
    });
    await t.step("a second client comes through poll_accept", async () => {
      const second = await Deno.connect({ transport: "unix", path: expected });
      let got: Uint8Array = new Uint8Array();
      for (let i = 0; i < 100 && got.length === 0; i++) {
        got = await invoke(netPollAccept, [encodeU32(bound.handle)], call);
      }
      assert.equal(got.length, 4);
      second.close();
    });
    await t.step("closing the listener removes the socket file", async () => {
      await invoke(netCloseStream, [encodeU32(bound.handle)], call);
      await assert.rejects(Deno.lstat(expected), Deno.errors.NotFound);
      await assert.rejects(
        invoke(netAccept, [encodeU32(bound.handle)], call),
        rejectsWith(HostStatus.NOT_FOUND),
      );
    });
  } finally {
    await f.dispose();
  }
});

Deno.test("net_bind_unix is gated by net_bind and takes names, never paths", async (t) => {
  const f = await fixture();
  try {
    await t.step("no net_bind entry: DENIED by the gate", async () => {
      await assert.rejects(
        invoke(netBindUnix, ["chat"], f.call(["unix:other"])),
        rejectsWith(HostStatus.DENIED, /net_bind/),
      );
      const named = JSON.parse(
        dec.decode(await invoke(netBindUnix, ["unix:other"], f.call(["unix:other"]))),
      );
      assert.ok(named.path.endsWith("/sockets/bridge/other"));
    });
    await t.step("paths and bad names: INVALID_ARGUMENT", async () => {
      for (const name of ["", "../x", "a/b", "/tmp/x.sock", ".hidden", "x".repeat(65)]) {
        await assert.rejects(
          invoke(netBindUnix, [name], f.call()),
          rejectsWith(HostStatus.INVALID_ARGUMENT),
          name,
        );
      }
    });
    await t.step("a name already listening: CONFLICT; a stale socket is replaced", async () => {
      await invoke(netBindUnix, ["dup"], f.call());
      await assert.rejects(
        invoke(netBindUnix, ["dup"], f.call()),
        rejectsWith(HostStatus.CONFLICT),
      );
      const stalePath = join(f.home, ".local", "tmp", "sockets", "bridge", "stale");
      Deno.listen({ transport: "unix", path: stalePath }).close();
      const bound = JSON.parse(dec.decode(await invoke(netBindUnix, ["stale"], f.call())));
      assert.equal(bound.path, stalePath);
    });
    await t.step("a path past 107 bytes: LIMIT_EXCEEDED", async () => {
      const deep = { ...f.call() };
      const long = "d".repeat(64);
      await Deno.mkdir(join(f.home, long), { recursive: true });
      const vfs = {
        router: undefined,
        roots: { home: join(f.home, long) },
      } as unknown as SessionVfs;
      const services = {
        ...deep.services,
        vfs: () => Promise.resolve(vfs),
      } as typeof deep.services;
      await assert.rejects(
        invoke(netBindUnix, ["x".repeat(60)], { ...deep, services }),
        rejectsWith(HostStatus.LIMIT_EXCEEDED, /107/),
      );
    });
  } finally {
    await f.dispose();
  }
});
