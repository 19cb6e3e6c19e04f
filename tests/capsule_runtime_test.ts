/**
 * The capsule runtime end to end: real WAT guests installed into a temp home the way
 * `capsule install` does (`BinaryStore.put` + `writeInstallRecord`), loaded by the
 * `CapsuleRegistry` into a real `WasmEngine` whose host calls go through the real host-ABI
 * dispatcher and `CapsuleHostServices`, and driven over a real `EventBus`: load order, hash
 * refusal, tools with the message's principal as caller, describe, interceptor priorities,
 * Final, traps, health, uplinks, cron, workspace trust, unload/reload, the
 * `astrid.v1.capsules_loaded` announcement, and a daemon listing its capsules in `status`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import wabtInit from "wabt";
import { AuditLog } from "../kernel/audit/mod.ts";
import { TokenStore } from "../kernel/capabilities/mod.ts";
import {
  BinaryStore,
  CapsuleHostServices,
  type CapsuleInvocation,
  CapsuleRegistry,
  type CapsuleRegistryOptions,
  HANDLER_FAILED_TOPIC,
  readInstallRecord,
  StoreWorkspaceTrust,
  trustSubject,
  userCapsulesDir,
  workspaceCapsulesDir,
  WorkspaceDirectory,
  writeInstallRecord,
} from "../kernel/capsule/mod.ts";
import { WasmEngine } from "../kernel/capsule/engine/wasm/mod.ts";
import { ManualClock } from "../kernel/clock.ts";
import { DEFAULT_CONFIG } from "../kernel/config/mod.ts";
import { KeyPair } from "../kernel/crypto/mod.ts";
import {
  type BusContext,
  type BusMessage,
  EventBus,
  type JsonValue,
  ManualTimers,
} from "../kernel/events/mod.ts";
import { AstridHome } from "../kernel/home/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { InProcessApprovalBroker, SecurityInterceptor } from "../kernel/security/mod.ts";
import { SqliteStore } from "../kernel/storage/mod.ts";
import { bootDaemon, DaemonClient } from "../kernel/daemon/mod.ts";
import {
  CapsuleLogWriter,
  createHostHandler,
  guestLogSink,
  hostFunctionSpecs,
} from "../host_abi/mod.ts";

// ---- guests ------------------------------------------------------------------------------------

const wabt = await wabtInit();

function wat(text: string): Uint8Array {
  const m = wabt.parseWat("guest.wat", text, { bulk_memory: true });
  try {
    return new Uint8Array(m.toBinary({}).buffer);
  } finally {
    m.destroy();
  }
}

/** What one handler export does. */
type Export =
  | { kind: "reply"; json: unknown } // status OK + this JSON
  | { kind: "status"; status: number; text: string } // a non-OK status
  | { kind: "empty" } // no reply bytes: OK, empty
  | { kind: "echo" } // status OK + its invocation payload
  | { kind: "host"; fn: string } // calls astrid.<fn> with an empty request, returns its reply
  | { kind: "hostreq"; fn: string; fields: string[] } // calls astrid.<fn> with these fields
  | { kind: "sidecall"; fn: string; fields: string[]; json?: unknown } // calls astrid.<fn>, drops its reply, returns `json` (absent: empty)
  | { kind: "trap" }
  | { kind: "spin" } // loops forever
  | { kind: "ready" }; // calls signal_ready, returns

function watBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => `\\${b.toString(16).padStart(2, "0")}`).join("");
}

/** A guest module exporting `exports` (names → behaviour). */
function guest(exports: Record<string, Export>): Uint8Array {
  const fns = new Set<string>();
  for (const e of Object.values(exports)) {
    if (e.kind === "host" || e.kind === "hostreq" || e.kind === "sidecall") fns.add(e.fn);
    if (e.kind === "ready") fns.add("signal_ready");
  }
  const imports = [...fns].map((f) =>
    `(import "astrid" "${f}" (func $${f} (param i32 i32) (result i64)))`
  ).join("\n");
  let offset = 16;
  const data: string[] = [];
  const funcs: string[] = [];
  const constant = (bytes: Uint8Array): string => {
    const at = offset;
    data.push(`(data (i32.const ${at}) "${watBytes(bytes)}")`);
    offset += bytes.length + 8;
    return `(call $pack (i32.const ${at}) (i32.const ${bytes.length}))`;
  };
  const status = (code: number, body: string): Uint8Array => {
    const b = new TextEncoder().encode(body);
    const out = new Uint8Array(4 + b.length);
    new DataView(out.buffer).setUint32(0, code, true);
    out.set(b, 4);
    return out;
  };
  for (const [name, e] of Object.entries(exports)) {
    const head = `(func (export "${name}") (param $p i32) (param $l i32) (result i64)`;
    switch (e.kind) {
      case "reply":
        funcs.push(`${head} ${constant(status(0, JSON.stringify(e.json)))})`);
        break;
      case "status":
        funcs.push(`${head} ${constant(status(e.status, e.text))})`);
        break;
      case "empty":
        funcs.push(`${head} (i64.const 0))`);
        break;
      case "echo":
        funcs.push(`${head} (call $ok_echo (local.get $p) (local.get $l)))`);
        break;
      case "host":
        funcs.push(`${head} (call $${e.fn} (i32.const 0) (i32.const 0)))`);
        break;
      case "hostreq":
      case "sidecall": {
        const parts = e.fields.map((f) => new TextEncoder().encode(f));
        const req = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
        let o = 0;
        for (const p of parts) {
          new DataView(req.buffer).setUint32(o, p.length, true);
          req.set(p, o + 4);
          o += 4 + p.length;
        }
        const at = offset;
        data.push(`(data (i32.const ${at}) "${watBytes(req)}")`);
        offset += req.length + 8;
        const call = `(call $${e.fn} (i32.const ${at}) (i32.const ${req.length}))`;
        if (e.kind === "hostreq") funcs.push(`${head} ${call})`);
        else {
          const then = e.json === undefined
            ? "(i64.const 0)"
            : constant(status(0, JSON.stringify(e.json)));
          funcs.push(`${head} (drop ${call}) ${then})`);
        }
        break;
      }
      case "trap":
        funcs.push(`${head} (unreachable))`);
        break;
      case "spin":
        funcs.push(`${head} (loop $l (br $l)) (i64.const 0))`);
        break;
      case "ready":
        funcs.push(
          `${head} (drop (call $signal_ready (i32.const 0) (i32.const 0))) (i64.const 0))`,
        );
        break;
    }
  }
  return wat(`(module
  ${imports}
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 32768))
  (func $alloc (export "astrid_alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (if (i32.gt_u (local.get $end) (i32.const 262144))
      (then (local.set $p (i32.const 32768))
            (local.set $end (i32.add (i32.const 32768) (local.get $len)))))
    (global.set $heap (i32.and (i32.add (local.get $end) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func $pack (param $p i32) (param $l i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
      (i64.extend_i32_u (local.get $l))))
  (func $ok_echo (param $p i32) (param $l i32) (result i64)
    (local $o i32)
    (local.set $o (call $alloc (i32.add (local.get $l) (i32.const 4))))
    (i32.store (local.get $o) (i32.const 0))
    (memory.copy (i32.add (local.get $o) (i32.const 4)) (local.get $p) (local.get $l))
    (call $pack (local.get $o) (i32.add (local.get $l) (i32.const 4))))
  ${data.join("\n  ")}
  ${funcs.join("\n  ")}
)`);
}

// ---- the test kernel -------------------------------------------------------------------------

interface Kernel {
  root: string;
  home: AstridHome;
  bus: EventBus;
  clock: ManualClock;
  timers: ManualTimers;
  store: SqliteStore;
  registry: CapsuleRegistry;
  engine: WasmEngine<CapsuleInvocation>;
  trust: StoreWorkspaceTrust;
  workspaces: WorkspaceDirectory;
  logs: string[];
  errors: unknown[];
  install(
    name: string,
    manifest: string,
    wasm?: Uint8Array,
    options?: { principal?: string; workspace?: string; files?: Record<string, string> },
  ): Promise<string>;
  close(): Promise<void>;
}

async function makeKernel(options: Partial<CapsuleRegistryOptions> = {}): Promise<Kernel> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "astrid-rt-" }));
  const home = await AstridHome.open(join(root, "home"));
  const store = await SqliteStore.open(join(root, "state.db"));
  const key = await KeyPair.generate();
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 9, 0, 0));
  const timers = new ManualTimers(clock);
  const audit = new AuditLog(store, { signer: key, clock });
  const bus = new EventBus({ clock, timers, logger: { error: () => {}, warn: () => {} } });
  const security = new SecurityInterceptor({
    config: DEFAULT_CONFIG,
    audit,
    tokens: new TokenStore(store, { clock, trustedIssuers: [key.publicKey] }),
    store,
    signer: key,
    broker: new InProcessApprovalBroker(),
    clock,
    timers,
  });
  const logs: string[] = [];
  const errors: unknown[] = [];
  const log = {
    info: (m: string) => void logs.push(`INFO ${m}`),
    warn: (m: string) => void logs.push(`WARN ${m}`),
    error: (m: string) => void logs.push(`ERROR ${m}`),
  };
  const writer = new CapsuleLogWriter(home);
  const ref: { services?: CapsuleHostServices } = {};
  const engine = new WasmEngine<CapsuleInvocation>({
    hostFunctions: hostFunctionSpecs(),
    handler: createHostHandler((call) => ref.services!.context(call), {
      onError: (error) => errors.push(error),
    }),
    onLog: guestLogSink(writer),
    idleCheckMs: 0,
    pool: { minInstances: 1, maxInstances: 2 },
  });
  const trust = new StoreWorkspaceTrust(store, { clock });
  const workspaces = new WorkspaceDirectory();
  const registry = new CapsuleRegistry({
    home,
    bus,
    engine,
    clock,
    timers,
    log,
    workspaceTrust: trust,
    ...options,
  });
  const services = new CapsuleHostServices({
    home,
    store,
    bus,
    registry,
    security,
    audit,
    logs: writer,
    clock,
    timers,
    workspaces,
  });
  ref.services = services;
  const binaries = new BinaryStore(home.bin);
  return {
    root,
    home,
    bus,
    clock,
    timers,
    store,
    registry,
    engine,
    trust,
    workspaces,
    logs,
    errors,
    async install(name, manifest, wasm, opts = {}) {
      const base = opts.workspace !== undefined
        ? workspaceCapsulesDir(opts.workspace)
        : userCapsulesDir(home, principalId(opts.principal ?? "default"));
      const dir = join(base, name);
      await Deno.mkdir(dir, { recursive: true });
      for (const [path, text] of Object.entries(opts.files ?? {})) {
        await Deno.mkdir(join(dir, path, ".."), { recursive: true });
        await Deno.writeTextFile(join(dir, path), text);
      }
      const hash = wasm === undefined ? null : await binaries.put(wasm);
      const text = `[package]\nname = "${name}"\nversion = "1.0.0"\n${
        wasm === undefined ? "" : "\n[wasm]\n"
      }${manifest}`;
      await writeInstallRecord(dir, {
        manifestText: text,
        meta: {
          name,
          version: "1.0.0",
          wasm_hash: hash,
          source: "test",
          installed_at: new Date(clock.now()).toISOString(),
        },
      });
      return dir;
    },
    async close() {
      await registry.close();
      await services.close();
      await engine.close();
      await writer.flush();
      bus.close();
      await store.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

const TOOLS_GUEST = guest({
  tool_whoami: { kind: "host", fn: "get_caller" },
  tool_echo: { kind: "echo" },
  tool_boom: { kind: "trap" },
  tool_refuse: { kind: "status", status: 1, text: "Not today" },
});

const TOOLS_MANIFEST = `
[capabilities]

[[tool]]
name = "whoami"
description = "Says who called"

[[tool]]
name = "echo"
description = "Echoes its call"

[[tool]]
name = "boom"
description = "Traps"

[[tool]]
name = "refuse"
description = "Refuses"
`;

function ctx(principal: string): BusContext {
  return { principal: principalId(principal), source: { kind: "kernel", name: "test" } };
}

/** Collects messages on `pattern` (subscription semantics) until `n` arrived. */
function collect(bus: EventBus, pattern: string): {
  messages: BusMessage[];
  next(n: number): Promise<BusMessage[]>;
  close(): void;
} {
  const messages: BusMessage[] = [];
  const waiters: { n: number; resolve: (m: BusMessage[]) => void }[] = [];
  const listener = bus.listen(pattern, (msg) => {
    messages.push(msg);
    for (const w of [...waiters]) {
      if (messages.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(messages.slice(0, w.n));
      }
    }
  });
  return {
    messages,
    next: (n) =>
      messages.length >= n
        ? Promise.resolve(messages.slice(0, n))
        : new Promise((resolve) => waiters.push({ n, resolve })),
    close: () => listener.close(),
  };
}

function json(msg: BusMessage): Record<string, JsonValue> {
  assert.equal(msg.payload.kind, "json");
  return (msg.payload as { value: Record<string, JsonValue> }).value;
}

/** Lets queued microtasks and worker messages run (no timer, no sleep). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (cond()) return;
    await new Promise((r) => queueMicrotask(() => setTimeout(r, 0)));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

// ---- tests -------------------------------------------------------------------------------------

Deno.test("CapsuleRegistry.load() orders by imports, blocks what it must, loads the rest", async (t) => {
  const k = await makeKernel();
  try {
    const empty = guest({ nothing: { kind: "empty" } });
    await k.install("zeta-provider", `[exports]\n"astrid:thing" = "1.2.0"\n`, empty);
    await k.install("alpha-dep", `[imports]\n"astrid:thing" = "^1.0"\n`, empty);
    await k.install("lonely", `[imports]\n"astrid:missing" = "^1.0"\n`, empty);
    await k.install(
      "cyc-a",
      `[imports]\n"astrid:b" = "^1"\n[exports]\n"astrid:a" = "1.0.0"\n`,
      empty,
    );
    await k.install(
      "cyc-b",
      `[imports]\n"astrid:a" = "^1"\n[exports]\n"astrid:b" = "1.0.0"\n`,
      empty,
    );
    const loaded = collect(k.bus, "astrid.v1.capsules_loaded");
    const report = await k.registry.load();

    await t.step("a dependent loads after its provider, whatever the names", () => {
      assert.deepEqual(report.loaded, ["zeta-provider", "alpha-dep"]);
    });
    await t.step("a missing required import blocks only that capsule, with the reason", () => {
      const lonely = report.blocked.find((b) => b.name === "lonely");
      assert.match(lonely!.reason, /import "astrid:missing" "\^1\.0" is exported by no capsule/);
    });
    await t.step("a cycle is reported naming its capsules", () => {
      const a = report.blocked.find((b) => b.name === "cyc-a");
      assert.match(a!.reason, /cycle: cyc-a → cyc-b → cyc-a/);
      assert.ok(report.blocked.some((b) => b.name === "cyc-b"));
    });
    await t.step("list() shows every capsule with its state", () => {
      const states = Object.fromEntries(k.registry.list().map((c) => [c.name, c.state]));
      assert.deepEqual(states, {
        "zeta-provider": "loaded",
        "alpha-dep": "loaded",
        lonely: "blocked",
        "cyc-a": "blocked",
        "cyc-b": "blocked",
      });
    });
    await t.step("reloading a dependent alone finds its provider loaded", async () => {
      const r = await k.registry.reload("alpha-dep", { announce: false });
      assert.deepEqual(r.loaded, ["alpha-dep"]);
      assert.deepEqual(r.blocked, []);
    });
    await t.step("astrid.v1.capsules_loaded is published with the list", async () => {
      const [msg] = await loaded.next(1);
      assert.deepEqual(json(msg).capsules, ["zeta-provider", "alpha-dep"]);
      assert.equal(msg.source.kind, "kernel");
      assert.equal((json(msg).blocked as unknown[]).length, 3);
    });
    loaded.close();
  } finally {
    await k.close();
  }
});

Deno.test("CapsuleRegistry.load() refuses a binary whose bytes do not match its pinned hash", async () => {
  const k = await makeKernel();
  try {
    const good = guest({ nothing: { kind: "empty" } });
    await k.install("tampered", "", good);
    await k.install("fine", "", good);
    // Another module written over the stored file: same name, other bytes.
    const store = new BinaryStore(k.home.bin);
    const [address] = await store.list();
    await Deno.writeFile(store.path(address), guest({ other: { kind: "trap" } }));
    const report = await k.registry.load();
    assert.equal(report.loaded.length, 0);
    assert.equal(report.failed.length, 2);
    for (const f of report.failed) assert.match(f.error, /hashes to blake3:.*changed on disk/);
    // A fresh install of the right bytes loads.
    await Deno.writeFile(store.path(address), good);
    assert.deepEqual((await k.registry.reloadAll()).loaded, ["fine", "tampered"]);
  } finally {
    await k.close();
  }
});

Deno.test("Tool capsules answer over the bus with the message's principal as caller", async (t) => {
  const k = await makeKernel();
  try {
    await k.install("tools", TOOLS_MANIFEST, TOOLS_GUEST);
    await k.install(
      "other-tools",
      `
[[tool]]
name = "ping"
description = "Pings"
input_schema = { type = "object", properties = { n = { type = "integer" } } }
`,
      guest({ tool_ping: { kind: "reply", json: "pong" } }),
    );
    assert.deepEqual((await k.registry.load()).loaded, ["other-tools", "tools"]);

    await t.step("two principals each see themselves as the caller", async () => {
      const results = collect(k.bus, "tool.v1.execute.whoami.result");
      await k.bus.publish("tool.v1.execute.whoami", { arguments: {}, session: "s-a" }, {
        ctx: ctx("alice"),
        request_id: "r-alice",
      });
      await k.bus.publish("tool.v1.execute.whoami", { arguments: {}, session: "s-b" }, {
        ctx: ctx("bob"),
        request_id: "r-bob",
      });
      const got = await results.next(2);
      results.close();
      const byId = new Map(got.map((m) => [m.request_id, m]));
      for (
        const [id, principal, session] of [["r-alice", "alice", "s-a"], ["r-bob", "bob", "s-b"]]
      ) {
        const msg = byId.get(id)!;
        assert.equal(msg.principal, principal);
        assert.equal(msg.source.name, "tools");
        const p = json(msg);
        assert.equal(p.is_error, false);
        assert.equal(p.request_id, id);
        assert.equal(p.session, session);
        const caller = JSON.parse(p.content as string);
        assert.equal(caller.principal, principal);
        assert.equal(caller.capsule, "tools");
        assert.equal(caller.session, session);
        assert.equal(caller.topic, "tool.v1.execute.whoami");
      }
    });

    await t.step("the handler receives the envelope and the call's arguments", async () => {
      const results = collect(k.bus, "tool.v1.execute.echo.result");
      await k.bus.publish("tool.v1.execute.echo", { arguments: { text: "hi" }, call_id: "c1" }, {
        ctx: ctx("alice"),
        request_id: "r1",
      });
      const [msg] = await results.next(1);
      results.close();
      assert.equal(json(msg).call_id, "c1");
      const env = JSON.parse(json(msg).content as string);
      assert.equal(env.topic, "tool.v1.execute.echo");
      assert.equal(env.principal, "alice");
      assert.equal(env.request_id, "r1");
      assert.equal(env.tool, "echo");
      assert.deepEqual(env.arguments, { text: "hi" });
      assert.deepEqual(env.payload, { arguments: { text: "hi" }, call_id: "c1" });
    });

    await t.step("a status other than OK is an error result", async () => {
      const results = collect(k.bus, "tool.v1.execute.refuse.result");
      await k.bus.publish("tool.v1.execute.refuse", {}, { ctx: ctx("alice"), request_id: "r2" });
      const [msg] = await results.next(1);
      results.close();
      assert.equal(json(msg).is_error, true);
      assert.equal(json(msg).content, "Not today");
      assert.deepEqual(json(msg).error, { code: "DENIED", message: "Not today" });
    });

    await t.step("a trap fails only that call; the capsules keep answering", async () => {
      const boom = collect(k.bus, "tool.v1.execute.boom.result");
      const pong = collect(k.bus, "tool.v1.execute.ping.result");
      const echo = collect(k.bus, "tool.v1.execute.echo.result");
      await k.bus.publish("tool.v1.execute.boom", {}, { ctx: ctx("alice"), request_id: "b1" });
      const [failed] = await boom.next(1);
      assert.equal(json(failed).is_error, true);
      assert.equal((json(failed).error as { code: string }).code, "WASM_TRAP");
      assert.match(json(failed).content as string, /^Tool "boom" failed: /);
      await k.bus.publish("tool.v1.execute.ping", {}, { ctx: ctx("bob"), request_id: "p1" });
      await k.bus.publish("tool.v1.execute.echo", {}, { ctx: ctx("bob"), request_id: "e1" });
      assert.equal(json((await pong.next(1))[0]).content, '"pong"');
      assert.equal(json((await echo.next(1))[0]).is_error, false);
      for (const c of [boom, pong, echo]) c.close();
      const tools = k.registry.list().find((c) => c.name === "tools")!;
      assert.equal(tools.health!.status, "ok");
      assert.equal(tools.health!.consecutiveFailures, 0);
      assert.equal(tools.health!.failures, 1);
    });

    await t.step("tool.v1.request.describe gathers every tool capsule's tools", async () => {
      const answers = collect(k.bus, "tool.v1.response.describe.*");
      await k.bus.publish("tool.v1.request.describe", {}, { ctx: ctx("alice"), request_id: "d1" });
      const got = await answers.next(2);
      answers.close();
      const byCapsule = Object.fromEntries(got.map((m) => [json(m).capsule, json(m)]));
      assert.deepEqual(Object.keys(byCapsule).sort(), ["other-tools", "tools"]);
      assert.deepEqual(
        (byCapsule.tools.tools as { name: string }[]).map((x) => x.name),
        ["whoami", "echo", "boom", "refuse"],
      );
      assert.deepEqual(byCapsule["other-tools"].tools, [{
        name: "ping",
        description: "Pings",
        input_schema: { type: "object", properties: { n: { type: "integer" } } },
      }]);
      for (const m of got) {
        assert.equal(m.request_id, "d1");
        assert.equal(m.topic, `tool.v1.response.describe.${json(m).capsule}`);
      }
      assert.deepEqual(
        k.registry.tools({ principal: "alice" }).map((x) => x.name).sort(),
        ["boom", "echo", "ping", "refuse", "whoami"],
      );
    });

    await t.step("unload stops answering; reload answers again", async () => {
      assert.equal(await k.registry.unload("other-tools"), true);
      assert.equal(k.registry.list().some((c) => c.name === "other-tools"), false);
      assert.equal(k.bus.acl("other-tools"), undefined);
      const r = await k.bus.publish("tool.v1.execute.ping", {}, { ctx: ctx("bob") });
      assert.equal(r.outcome === "delivered" ? r.recipients : -1, 0);
      const report = await k.registry.reload("other-tools");
      assert.deepEqual(report.loaded, ["other-tools"]);
      const pong = collect(k.bus, "tool.v1.execute.ping.result");
      await k.bus.publish("tool.v1.execute.ping", {}, { ctx: ctx("bob"), request_id: "p2" });
      assert.equal(json((await pong.next(1))[0]).request_id, "p2");
      pong.close();
      await assert.rejects(() => k.registry.reload("nope"), /No capsule "nope" is known/);
    });
  } finally {
    await k.close();
  }
});

Deno.test("Interceptors run by priority: a guard at 10 denies before the handler at 100", async (t) => {
  const k = await makeKernel({ unhealthyAfter: 3 });
  try {
    const sub = `[publish]\n"demo.v1.*" = "opaque"\n`;
    await k.install(
      "core",
      `${sub}[subscribe]\n"demo.v1.ask" = { wit = "opaque", handler = "on_ask" }\n`,
      guest({ on_ask: { kind: "reply", json: { action: "final", reply: { from: "core" } } } }),
    );
    await k.install(
      "guard",
      `[subscribe]\n"demo.v1.ask" = { wit = "opaque", handler = "check", priority = 10 }\n`,
      guest({ check: { kind: "reply", json: { action: "deny", reason: "blocked by guard" } } }),
    );
    await k.install(
      "cache",
      `[subscribe]\n"demo.v1.cached" = { wit = "opaque", handler = "hit", priority = 50 }\n`,
      guest({ hit: { kind: "reply", json: { action: "final", reply: { cached: true } } } }),
    );
    await k.install(
      "tagger",
      `[subscribe]\n"demo.v1.cached" = { wit = "opaque", handler = "tag", priority = 100 }\n`,
      guest({ tag: { kind: "trap" } }),
    );
    await k.install(
      "flaky",
      `[subscribe]\n"demo.v1.flaky" = { wit = "opaque", handler = "boom", priority = 100 }\n`,
      guest({ boom: { kind: "trap" } }),
    );
    await k.install(
      "passer",
      `[subscribe]\n"demo.v1.flaky" = { wit = "opaque", handler = "pass", priority = 200 }\n`,
      guest({ pass: { kind: "empty" } }),
    );
    await k.registry.load();

    await t.step(
      "the guard's Deny stops the chain; the core handler is never invoked",
      async () => {
        const r = await k.bus.publish("demo.v1.ask", { q: 1 }, { ctx: ctx("alice") });
        assert.equal(r.outcome, "denied");
        assert.equal(r.outcome === "denied" && r.reason, "blocked by guard");
        assert.equal(r.outcome === "denied" && r.by, "guard.check");
        const core = k.registry.list().find((c) => c.name === "core")!;
        assert.equal(core.health!.successes, 0);
      },
    );

    await t.step("without the guard the core handler answers Final", async () => {
      await k.registry.unload("guard");
      const reply = await k.bus.request("demo.v1.ask", { q: 2 }, { ctx: ctx("alice") });
      assert.deepEqual(reply.payload, { kind: "json", value: { from: "core" } });
      assert.equal(reply.principal, "alice");
    });

    await t.step(
      "a Final short-circuits: later interceptors and subscribers see nothing",
      async () => {
        const seen = collect(k.bus, "demo.v1.cached");
        const reply = await k.bus.request("demo.v1.cached", {}, { ctx: ctx("bob") });
        assert.deepEqual(reply.payload, { kind: "json", value: { cached: true } });
        assert.equal(seen.messages.length, 0);
        seen.close();
        assert.equal(k.registry.list().find((c) => c.name === "tagger")!.health!.failures, 0);
      },
    );

    await t.step(
      "a failing non-guard handler is skipped; repeated failures mark it unhealthy",
      async () => {
        for (let i = 0; i < 3; i++) {
          const r = await k.bus.publish("demo.v1.flaky", { i }, { ctx: ctx("alice") });
          assert.equal(r.outcome, "delivered");
        }
        const flaky = k.registry.list().find((c) => c.name === "flaky")!;
        assert.equal(flaky.health!.status, "unhealthy");
        assert.equal(flaky.health!.consecutiveFailures, 3);
        assert.match(flaky.health!.lastError!, /trap|unreachable/i);
        assert.equal(k.registry.unhealthy().map((c) => c.name).join(), "flaky");
        assert.equal(k.registry.list().find((c) => c.name === "passer")!.health!.successes, 3);
        assert.ok(k.logs.some((l) => l.startsWith("ERROR Capsule is unhealthy")));
      },
    );
  } finally {
    await k.close();
  }
});

Deno.test("A trapping [subscribe] handler at 50 fails open with guard = false, closed by default", async (t) => {
  const k = await makeKernel();
  try {
    const trap = guest({ generate: { kind: "trap" } });
    await k.install(
      "open-cache",
      `[subscribe]\n"demo.v1.open" = { wit = "opaque", handler = "generate", priority = 50, guard = false }\n`,
      trap,
    );
    await k.install(
      "closed-cache",
      `[subscribe]\n"demo.v1.closed" = { wit = "opaque", handler = "generate", priority = 50 }\n`,
      trap,
    );
    await k.install(
      "strict",
      `[subscribe]\n"demo.v1.strict" = { wit = "opaque", handler = "generate", priority = 200, guard = true }\n`,
      trap,
    );
    await k.install(
      "provider",
      `[subscribe]\n"demo.v1.*" = { wit = "opaque", handler = "answer", priority = 100 }\n`,
      guest({ answer: { kind: "reply", json: { action: "final", reply: { from: "provider" } } } }),
    );
    await k.registry.load();
    const failures = () => k.bus.stats().counters.interceptorFailures;

    await t.step("guard = false: the message continues to the handler at 100", async () => {
      const before = failures();
      const notices: BusMessage[] = [];
      const l = k.bus.listen(HANDLER_FAILED_TOPIC, (m) => void notices.push(m));
      const reply = await k.bus.request("demo.v1.open", { q: 1 }, { ctx: ctx("alice") });
      l.close();
      assert.equal(notices.length, 1, "the failure is announced");
      assert.equal(notices[0].principal, "alice");
      const notice = notices[0].payload.kind === "json" ? notices[0].payload.value : null;
      const { capsule, handler, topic, request_id, error } = notice as Record<string, unknown>;
      assert.deepEqual([capsule, handler, topic], ["open-cache", "generate", "demo.v1.open"]);
      const { guard, outcome, answers } = notice as Record<string, unknown>;
      assert.deepEqual([guard, outcome, answers], [false, "skipped", false]);
      assert.equal(request_id, notices[0].request_id);
      assert.match(JSON.stringify(error), /trap|unreachable/i);
      assert.deepEqual(reply.payload, { kind: "json", value: { from: "provider" } });
      assert.equal(failures(), before + 1);
      const open = k.registry.list().find((c) => c.name === "open-cache")!;
      assert.equal(open.health!.failures, 1);
      assert.match(open.health!.lastError!, /trap|unreachable/i);
    });

    await t.step("no guard field at priority 50: the trap denies the message", async () => {
      const before = failures();
      const notices: BusMessage[] = [];
      const l = k.bus.listen(HANDLER_FAILED_TOPIC, (m) => void notices.push(m));
      const r = await k.bus.publish("demo.v1.closed", { q: 2 }, { ctx: ctx("alice") });
      l.close();
      const notice = notices[0]?.payload.kind === "json" ? notices[0].payload.value : null;
      const { guard, outcome } = notice as Record<string, unknown>;
      assert.deepEqual([guard, outcome], [true, "denied"]);
      assert.equal(r.outcome, "denied");
      assert.equal(r.outcome === "denied" && r.by, "closed-cache.generate");
      assert.match(r.outcome === "denied" ? r.reason : "", /failed/);
      assert.equal(failures(), before + 1);
      const provider = k.registry.list().find((c) => c.name === "provider")!;
      assert.equal(provider.health!.successes, 1, "only the guard = false call reached it");
    });

    await t.step("guard = true at priority 200: the trap denies the message", async () => {
      const r = await k.bus.publish("demo.v1.strict", { q: 3 }, { ctx: ctx("alice") });
      assert.equal(r.outcome, "final", "the provider at 100 answers before the guard at 200");
      await k.registry.unload("provider");
      const denied = await k.bus.publish("demo.v1.strict", { q: 4 }, { ctx: ctx("alice") });
      assert.equal(denied.outcome, "denied");
      assert.equal(denied.outcome === "denied" && denied.by, "strict.generate");
    });
  } finally {
    await k.close();
  }
});

/** Waits (real time, at most `ms`) until `done()` holds; the engine's timeouts are real. */
async function untilMs(done: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`Condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("A detached [subscribe] handler runs after delivery, for the message's principal", async (t) => {
  const k = await makeKernel({ handlerTimeoutMs: 400 });
  try {
    const seen = (n: string) => ["demo.v1.seen", JSON.stringify({ n }), "{}"];
    await k.install(
      "watcher",
      `[subscribe]
"demo.v1.slow" = { wit = "opaque", handler = "slow", detach = true }
"demo.v1.who" = { wit = "opaque", handler = "who", detach = true }
"demo.v1.loud" = { wit = "opaque", handler = "loud", detach = true }
[publish]
"demo.v1.seen" = "opaque"
`,
      guest({
        slow: { kind: "spin" },
        who: { kind: "sidecall", fn: "ipc_publish", fields: seen("who") },
        loud: {
          kind: "sidecall",
          fn: "ipc_publish",
          fields: seen("loud"),
          json: { action: "final", reply: { from: "watcher" } },
        },
      }),
    );
    await k.registry.load();
    const watcher = () => k.registry.list().find((c) => c.name === "watcher")!;
    const got: BusMessage[] = [];
    const listener = k.bus.listen("demo.v1.seen", (m) => void got.push(m));

    await t.step(
      "publish() returns while the handler runs and counts it as a recipient",
      async () => {
        const r = await k.bus.publish("demo.v1.slow", { q: 1 }, { ctx: ctx("alice") });
        assert.equal(r.outcome, "delivered");
        assert.deepEqual(
          r.outcome === "delivered" ? [r.recipients, r.handlers] : [],
          [1, 0],
          "a routed subscription, not an interceptor: reachedNobody stays false",
        );
        assert.equal(watcher().health!.failures, 0, "still spinning when the publish returned");
        // The spin ends at the handler limit (400 ms): a logged, counted failure.
        await untilMs(() => watcher().health!.failures === 1);
        assert.match(watcher().health!.lastError!, /timed out|time/i);
        assert.ok(k.logs.some((l) => l === "ERROR Detached handler failed"));
      },
    );

    await t.step("it runs for each message's principal, as an interceptor would", async () => {
      got.length = 0;
      await k.bus.publish("demo.v1.who", { q: 2 }, { ctx: ctx("alice") });
      await k.bus.publish("demo.v1.who", { q: 3 }, { ctx: ctx("bob") });
      await untilMs(() => got.length === 2);
      assert.deepEqual(got.map((m) => m.principal).sort(), ["alice", "bob"]);
      assert.ok(got.every((m) => m.source.kind === "capsule" && m.source.name === "watcher"));
      // The guest publishes before its invocation returns: its success is counted just after.
      await untilMs(() => watcher().health!.successes >= 2);
    });

    await t.step("a Final reply is ignored and logged once", async () => {
      got.length = 0;
      const r1 = await k.bus.publish("demo.v1.loud", { q: 4 }, { ctx: ctx("alice") });
      const r2 = await k.bus.publish("demo.v1.loud", { q: 5 }, { ctx: ctx("alice") });
      assert.equal(r1.outcome, "delivered");
      assert.equal(r2.outcome, "delivered");
      await untilMs(() => got.length === 2);
      await untilMs(() => watcher().health!.successes >= 4);
      const warned = k.logs.filter((l) => l.startsWith('WARN Detached handler "watcher.loud"'));
      assert.equal(warned.length, 1);
      assert.match(warned[0], /answered final: ignored/);
    });

    await t.step("unloaded, the route reaches nobody again", async () => {
      await k.registry.unload("watcher");
      const r = await k.bus.publish("demo.v1.who", { q: 6 }, { ctx: ctx("alice") });
      assert.deepEqual(
        r.outcome === "delivered" ? [r.recipients, r.handlers] : [],
        [0, 0],
      );
    });
    listener.close();
  } finally {
    await k.close();
  }
});

Deno.test("Uplinks load first and must signal ready; cron publishes on schedule", async (t) => {
  const k = await makeKernel({ readyTimeoutMs: 5_000 });
  try {
    await k.install(
      "up-good",
      `[capabilities]\nuplink = true\n`,
      guest({ astrid_run: { kind: "ready" } }),
    );
    await k.install(
      "up-quits",
      `[capabilities]\nuplink = true\n`,
      guest({ astrid_run: { kind: "empty" } }),
    );
    await k.install(
      "up-slow",
      `[capabilities]\nuplink = true\n`,
      guest({ astrid_run: { kind: "spin" } }),
    );
    await k.install(
      "ticker",
      `
[publish]
"demo.v1.tick" = "opaque"

[[cron]]
name = "every5"
schedule = "*/5 * * * *"
topic = "demo.v1.tick"
payload = { n = 1 }
`,
      guest({ nothing: { kind: "empty" } }),
    );
    const pending = k.registry.load();
    // up-good signals, up-quits ends: up-slow's ready timer is the one left pending.
    await until(
      () =>
        k.timers.pending === 1 &&
        k.registry.list().find((c) => c.name === "up-good")?.ready === true,
      "the slow uplink's ready timer alone",
    );
    k.timers.advance(5_000);
    const report = await pending;

    await t.step("the ready uplink is loaded; the others fail with the reason", () => {
      assert.deepEqual(report.loaded, ["up-good", "ticker"]);
      const failed = Object.fromEntries(report.failed.map((f) => [f.name, f.error]));
      assert.match(failed["up-quits"], /run loop ended \(returned\) before it signalled ready/);
      assert.match(failed["up-slow"], /did not call signal_ready within 5000 ms/);
      const good = k.registry.list().find((c) => c.name === "up-good")!;
      assert.equal(good.ready, true);
    });

    await t.step("a cron entry publishes its topic as its capsule", async () => {
      const ticks = collect(k.bus, "demo.v1.tick");
      assert.equal(k.registry.keepsAlive(), true);
      k.timers.advance(5 * 60_000);
      const [tick] = await ticks.next(1);
      assert.deepEqual(tick.payload, { kind: "json", value: { n: 1 } });
      assert.equal(tick.source.name, "ticker");
      assert.equal(new Date(tick.timestamp).toISOString(), "2026-01-05T09:05:00.000Z");
      ticks.close();
    });
  } finally {
    await k.close();
  }
});

Deno.test("Workspace capsules load only once the operator trusts them", async (t) => {
  const k = await makeKernel();
  try {
    const ws = join(k.root, "project");
    await Deno.mkdir(join(ws, ".astrid"), { recursive: true });
    await Deno.writeTextFile(join(ws, ".astrid", "workspace-id"), "w1\n");
    assert.equal(await k.workspaces.remember("w1", ws), true);
    const dir = await k.install(
      "ws-tool",
      `
[[tool]]
name = "where"
description = "Says where"
`,
      guest({ tool_where: { kind: "host", fn: "get_caller" } }),
      { workspace: ws },
    );
    await k.registry.load();

    await t.step("untrusted: reported, not loaded", async () => {
      const r = await k.registry.loadWorkspace({ id: "w1", root: ws });
      assert.equal(r.loaded.length, 0);
      assert.match(r.untrusted[0].reason, /not trusted by the operator/);
      assert.equal(k.registry.list({ principal: "alice" })[0].state, "untrusted");
    });

    await t.step("trusted: loaded, serving only messages of that workspace", async () => {
      await k.trust.trust(trustSubject("w1", await readInstallRecord(dir)));
      const r = await k.registry.loadWorkspace({ id: "w1", root: ws });
      assert.deepEqual(r.loaded, ["ws-tool#w1"]);
      const results = collect(k.bus, "tool.v1.execute.where.result");
      await k.bus.publish("tool.v1.execute.where", { workspace_id: "w2" }, { ctx: ctx("alice") });
      await k.bus.publish("tool.v1.execute.where", {}, { ctx: ctx("alice") });
      await k.bus.publish("tool.v1.execute.where", { workspace_id: "w1", session: "s1" }, {
        ctx: ctx("alice"),
        request_id: "in-w1",
      });
      await k.bus.publish("tool.v1.execute.where", { workspace_id: "w1", session: "s2" }, {
        ctx: ctx("bob"),
        request_id: "bob-in-w1",
      });
      const got = await results.next(2);
      assert.deepEqual(got.map((m) => m.request_id).sort(), ["bob-in-w1", "in-w1"]);
      for (const m of got) {
        const caller = JSON.parse(json(m).content as string);
        assert.equal(caller.workspace, "w1");
        assert.equal(caller.principal, m.principal);
      }
      assert.equal(results.messages.length, 2);
      results.close();
      assert.equal(k.registry.tools({ principal: "bob", workspaceId: "w1" }).length, 1);
      assert.equal(k.registry.tools({ principal: "bob" }).length, 0);
      assert.deepEqual((await k.registry.ensureWorkspace({ id: "w1", root: ws })).loaded, []);
    });

    await t.step("a changed manifest is untrusted again", async () => {
      await Deno.writeTextFile(
        join(dir, "Capsule.toml"),
        (await Deno.readTextFile(join(dir, "Capsule.toml"))) + "\n# changed\n",
      );
      const r = await k.registry.loadWorkspace({ id: "w1", root: ws });
      assert.equal(r.loaded.length, 0);
      assert.equal(r.untrusted.length, 1);
    });
  } finally {
    await k.close();
  }
});

Deno.test("Host calls see the session's workspace overlay, named by the message", async (t) => {
  const k = await makeKernel();
  try {
    const ws = join(k.root, "project");
    await Deno.mkdir(join(ws, ".astrid"), { recursive: true });
    await Deno.writeTextFile(join(ws, ".astrid", "workspace-id"), "w1\n");
    await Deno.writeTextFile(join(ws, "notes.txt"), "hello from w1");
    await k.workspaces.remember("w1", ws);
    await k.install(
      "reader",
      `
[capabilities]
fs_read = ["workspace://"]

[[tool]]
name = "read_notes"
description = "Reads notes.txt"
`,
      guest({
        tool_read_notes: { kind: "hostreq", fn: "fs_read_file", fields: ["workspace://notes.txt"] },
      }),
    );
    await k.registry.load();
    const results = collect(k.bus, "tool.v1.execute.read_notes.result");
    const call = async (payload: Record<string, JsonValue>, id: string) => {
      await k.bus.publish("tool.v1.execute.read_notes", payload, {
        ctx: ctx("alice"),
        request_id: id,
      });
      return json((await results.next(results.messages.length + 1)).at(-1)!);
    };

    await t.step("a session in a known workspace reads through its overlay", async () => {
      const r = await call({ session: "s1", workspace_id: "w1" }, "r1");
      assert.equal(r.is_error, false);
      assert.equal(r.content, "hello from w1");
    });
    await t.step("no workspace: workspace:// is empty and read-only", async () => {
      const r = await call({ session: "s1" }, "r2");
      assert.equal(r.is_error, true);
      assert.equal((r.error as { code: string }).code, "NOT_FOUND", String(k.errors));
    });
    await t.step("a workspace the kernel does not know is UNAVAILABLE", async () => {
      const r = await call({ session: "s1", workspace_id: "w9" }, "r3");
      assert.equal(r.is_error, true);
      assert.equal((r.error as { code: string }).code, "UNAVAILABLE");
      assert.match(r.content as string, /Workspace "w9" is not known to the kernel/);
    });
    results.close();
  } finally {
    await k.close();
  }
});

Deno.test("A principal's own capsule serves only that principal and shadows the system one", async () => {
  const k = await makeKernel();
  try {
    await k.install(
      "greeter",
      `[[tool]]\nname = "hello"\ndescription = "Greets"\n`,
      guest({ tool_hello: { kind: "reply", json: "system" } }),
    );
    await k.install(
      "greeter",
      `[[tool]]\nname = "hello"\ndescription = "Greets"\n`,
      guest({ tool_hello: { kind: "reply", json: "alice's own" } }),
      { principal: "alice" },
    );
    await k.registry.load();
    assert.deepEqual((await k.registry.ensurePrincipal("alice")).loaded, ["greeter@alice"]);
    assert.deepEqual((await k.registry.ensurePrincipal("alice")).loaded, []);
    const results = collect(k.bus, "tool.v1.execute.hello.result");
    await k.bus.publish("tool.v1.execute.hello", {}, { ctx: ctx("alice"), request_id: "a" });
    await k.bus.publish("tool.v1.execute.hello", {}, { ctx: ctx("bob"), request_id: "b" });
    const got = await results.next(2);
    results.close();
    const by = Object.fromEntries(got.map((m) => [m.request_id, json(m).content]));
    assert.deepEqual(by, { a: '"alice\'s own"', b: '"system"' });
    assert.equal(k.registry.list({ principal: "alice" }).length, 2);
    assert.equal(k.registry.list({ principal: "bob" }).length, 1);
    assert.deepEqual(k.registry.tools({ principal: "alice" }).map((t) => t.capsule), ["greeter"]);
    assert.equal(
      (k.registry.metadata("greeter", { principal: "alice" }) as { key: string }).key,
      "greeter@alice",
    );
  } finally {
    await k.close();
  }
});

Deno.test("Static capsules contribute context, skills and commands without a VM", async () => {
  const k = await makeKernel();
  try {
    await k.install(
      "notes",
      `
[static]
context_files = ["static/context.md"]

[[skill]]
name = "research"
description = "How to research"
file = "static/skills/research.md"

[[command]]
name = "cite"
description = "Citation help"
file = "static/commands/cite.md"
`,
      undefined,
      {
        files: {
          "static/context.md": "Be brief.",
          "static/skills/research.md": "Use sources.",
          "static/commands/cite.md": "Cite like this.",
        },
      },
    );
    const r = await k.registry.load();
    assert.deepEqual(r.loaded, ["notes"]);
    assert.deepEqual(k.registry.list()[0].engines, ["static"]);
    assert.deepEqual(k.registry.listContext().map((c) => [c.capsule, c.file, c.text]), [
      ["notes", "static/context.md", "Be brief."],
    ]);
    assert.deepEqual(k.registry.listSkills().map((s) => [s.name, s.text]), [[
      "research",
      "Use sources.",
    ]]);
    assert.deepEqual(k.registry.listCommands().map((c) => [c.name, c.text]), [[
      "cite",
      "Cite like this.",
    ]]);
    assert.deepEqual(k.registry.commands(), [
      { name: "cite", capsule: "notes", description: "Citation help", kind: "file" },
    ]);
    await k.registry.unload("notes");
    assert.deepEqual(k.registry.listContext(), []);
  } finally {
    await k.close();
  }
});

Deno.test("astrid daemon loads installed capsules and lists them in status", async () => {
  const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "ar" });
  try {
    const home = await AstridHome.open(root);
    const binaries = new BinaryStore(home.bin);
    const wasm = guest({ tool_ping: { kind: "reply", json: "pong" } });
    const hash = await binaries.put(wasm);
    for (const name of ["ping", "pong"]) {
      await writeInstallRecord(join(userCapsulesDir(home, principalId("default")), name), {
        manifestText:
          `[package]\nname = "${name}"\nversion = "0.1.0"\n\n[wasm]\n\n[[tool]]\nname = "${name}_tool"\ndescription = "x"\nhandler = "tool_ping"\n`,
        meta: {
          name,
          version: "0.1.0",
          wasm_hash: hash,
          source: "test",
          installed_at: new Date().toISOString(),
        },
      });
    }
    const daemon = await bootDaemon({ home: root, env: { get: () => undefined }, echoLog: false });
    try {
      const token = (await Deno.readTextFile(daemon.paths.token)).trim();
      const client = await DaemonClient.connect(daemon.paths.socket, { token, client: "test" });
      try {
        const status = await client.call<{ capsules: { name: string; state: string }[] }>("status");
        assert.deepEqual(status.capsules.map((c) => [c.name, c.state]), [
          ["ping", "loaded"],
          ["pong", "loaded"],
        ]);
        const list = await client.call<{ name: string }[]>("management", {
          request: "ListCapsules",
        });
        assert.deepEqual(list.map((c) => c.name), ["ping", "pong"]);
        const reload = await client.call<{ loaded: string[] }>("management", {
          request: "ReloadCapsules",
        });
        assert.deepEqual(reload.loaded, ["ping", "pong"]);
        const meta = await client.call<{ tools: { name: string }[] }>("management", {
          request: "GetCapsuleMetadata",
          params: { name: "pong" },
        });
        assert.deepEqual(meta.tools.map((t) => t.name), ["pong_tool"]);
      } finally {
        await client.close();
      }
    } finally {
      await daemon.shutdown("test done");
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("A principal-scoped capsule's handlers neither run nor count for another principal's message", async (t) => {
  const k = await makeKernel();
  try {
    await k.install(
      "provider",
      `[subscribe]
"llm.v1.request.generate.*" = { wit = "opaque", handler = "look" }
"llm.v1.request.*" = { wit = "opaque", handler = "note", detach = true }
`,
      guest({ look: { kind: "empty" }, note: { kind: "empty" } }),
      { principal: "bob" },
    );
    await k.registry.load();
    await k.registry.ensurePrincipal("alice");
    assert.deepEqual((await k.registry.ensurePrincipal("bob")).loaded, ["provider@bob"]);
    const provider = () =>
      k.registry.list({ principal: "bob" }).find((c) => c.name === "provider")!;
    const counts = (r: Awaited<ReturnType<EventBus["publish"]>>) =>
      r.outcome === "delivered" ? [r.recipients, r.handlers] : [r.outcome];

    await t.step("alice's message reaches nobody: recipients 0, handlers 0, no call", async () => {
      const r = await k.bus.publish("llm.v1.request.generate.openai", {}, { ctx: ctx("alice") });
      assert.deepEqual(counts(r), [0, 0]);
      assert.equal(provider().health!.successes, 0);
    });

    await t.step("bob's message reaches bob's interceptor and detached handler", async () => {
      const r = await k.bus.publish("llm.v1.request.generate.openai", {}, { ctx: ctx("bob") });
      assert.deepEqual(counts(r), [1, 1]);
      await untilMs(() => provider().health!.successes === 2);
    });
  } finally {
    await k.close();
  }
});

Deno.test("A detached handler whose queue overflows announces each evicted message", async () => {
  const k = await makeKernel({ maxInFlight: 1 });
  try {
    await k.install(
      "watcher",
      `[subscribe]\n"demo.v1.bulk" = { wit = "opaque", handler = "note", detach = true }\n`,
      guest({ note: { kind: "empty" } }),
    );
    await k.registry.load();
    const notices: BusMessage[] = [];
    const l = k.bus.listen(HANDLER_FAILED_TOPIC, (m) => void notices.push(m));
    // maxInFlight 1: a 1 MiB budget (the floor). One message runs, about 25 of 40 KiB fit in the
    // queue, and each later one evicts the oldest queued message of the heaviest principal.
    const blob = "x".repeat(40 * 1024);
    const owner = (i: number) => (i % 2 === 0 ? "alice" : "bob");
    const published = [];
    for (let i = 0; i < 40; i++) {
      published.push(
        k.bus.publish("demo.v1.bulk", { request_id: `r${i}`, session: "s1", blob }, {
          ctx: ctx(owner(i)),
        }),
      );
    }
    await Promise.all(published);
    const sub = k.bus.stats().subscriptions.find((s) => s.subscriber === "capsule:watcher")!;
    assert.equal(sub.budgetBytes, 1024 * 1024);
    assert.ok(sub.evicted > 0, "the queue overflowed");
    const watcher = () => k.registry.list().find((c) => c.name === "watcher")!;
    await untilMs(() => watcher().health!.successes === 40 - sub.evicted, 20_000);
    l.close();
    assert.equal(
      notices.length,
      sub.evicted,
      "one notice per evicted message, none for the others",
    );
    const ids = new Set<string>();
    for (const m of notices) {
      const p = (m.payload.kind === "json" ? m.payload.value : {}) as Record<string, JsonValue>;
      const error = p.error as Record<string, JsonValue>;
      const requestId = p.request_id as string;
      ids.add(requestId);
      assert.equal(m.request_id, requestId);
      assert.equal(
        m.principal,
        owner(Number(requestId.slice(1))),
        "the evicted message's principal",
      );
      assert.deepEqual(
        [p.capsule, p.handler, p.topic, p.session, p.guard, p.outcome, p.answers, error.code],
        ["watcher", "note", "demo.v1.bulk", "s1", false, "failed", false, "EVICTED"],
      );
      assert.match(error.message as string, /over its byte budget \(1048576 bytes\)/);
    }
    assert.equal(ids.size, notices.length, "each evicted message is announced once");
    assert.ok(!ids.has("r0"), "the message in flight was not evicted");
  } finally {
    await k.close();
  }
});
