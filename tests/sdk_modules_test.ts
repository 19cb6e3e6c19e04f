/**
 * A capsule that uses every module of the guest SDK, built with `astrid build` and run in a
 * real kernel (`astrid/testing`): once with a manifest granting what each module needs (the
 * calls succeed; the security mode is `autonomous` so no human is asked) and once with a
 * manifest granting nothing (the manifest gate answers `DENIED`, which the SDK returns as a
 * typed error). Bound to a workspace, so `workspace://` files and native processes run in a real
 * session (its overlay and sandbox).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CapsuleHarness, testBuildCacheDir, testCapsule } from "../sdk/testing/mod.ts";

const SOURCE = `import {
  approval, env, fs, hooks, http, identity, ipc, kv, log, net, Outcome, process, random, Result,
  runtime, security, time, uplink,
} from "@astrid/sdk";

@json
class Probe {
  module!: string;
  url: string = "";
}

/** The status of each step (\`OK\` or the error's code) and values, as a JSON object. */
class Report {
  parts: string[] = [];
  add(name: string, value: string): Report {
    this.parts.push(JSON.stringify<string>(name) + ":" + JSON.stringify<string>(value));
    return this;
  }
  step<T>(name: string, r: Result<T>): Report {
    return this.add(name, r.ok ? "OK" : r.error!.code);
  }
  done(name: string, o: Outcome): Report {
    return this.add(name, o.ok ? "OK" : o.error!.code);
  }
  toString(): string {
    return "{" + this.parts.join(",") + "}";
  }
}

@tool
function probe(args: Probe): string {
  const r = new Report();
  const m = args.module;
  if (m == "fs") {
    r.done("mkdir", fs.mkdir("home://probe/d"));
    r.done("write", fs.writeText("home://probe/d/a.txt", "hello"));
    const read = fs.readText("home://probe/d/a.txt");
    r.step("read", read).add("text", read.unwrapOr(""));
    const ex = fs.exists("home://probe/d/a.txt");
    r.step("exists", ex).add("found", ex.unwrapOr(false) ? "yes" : "no");
    const dir = fs.readdir("home://probe/d");
    r.step("readdir", dir).add("names", dir.ok ? dir.unwrap().map<string>((e) => e.name).join(",") : "");
    const st = fs.stat("home://probe/d/a.txt");
    r.step("stat", st).add("size", st.ok ? st.unwrap().size.toString() : "");
    r.done("unlink", fs.unlink("home://probe/d/a.txt"));
    r.step("outside", fs.readText("home://elsewhere.txt"));
  } else if (m == "workspace") {
    r.done("mkdir", fs.mkdir("workspace://notes"));
    r.done("write", fs.writeText("workspace://notes/a.txt", "draft"));
    r.add("text", fs.readText("workspace://notes/a.txt").unwrapOr(""));
  } else if (m == "kv") {
    r.done("set", kv.setText("k", "v"));
    const got = kv.getText("k");
    r.step("get", got).add("value", got.unwrapOr(""));
    const keys = kv.listKeys("");
    r.step("list", keys).add("keys", keys.ok ? keys.unwrap().join(",") : "");
    r.step("missing", kv.get("nope"));
    r.step("remove", kv.remove("k"));
    r.step("clear", kv.clearPrefix(""));
  } else if (m == "kvset") {
    r.done("set", kv.setText("greeting", "hi"));
  } else if (m == "kvget") {
    r.step("get", kv.getText("greeting"));
  } else if (m == "ipc") {
    const sub = ipc.subscribe("probe.v1.*", true);
    r.step("subscribe", sub);
    r.step("publish", ipc.publish("probe.v1.hello", '{"n":1}'));
    if (sub.ok) {
      const s = sub.unwrap();
      const got = s.recv(5000);
      r.step("recv", got).add("payload", got.ok ? got.unwrap().jsonText : "");
      r.done("close", s.close());
    }
  } else if (m == "env") {
    const g = env.get("GREETING");
    r.step("get", g).add("greeting", g.ok && g.unwrap() !== null ? g.unwrap()! : "");
    r.step("undeclared", env.get("NOPE"));
    const s = env.hasSecret("TOKEN");
    r.step("hasSecret", s).add("secret", s.unwrapOr(true) ? "set" : "unset");
  } else if (m == "runtime") {
    const c = runtime.caller();
    r.step("caller", c).add("principal", c.ok ? c.unwrap().principal : "");
    const inv = runtime.invocation();
    r.add("tool", inv !== null && inv.tool !== null ? inv.tool! : "");
  } else if (m == "basics") {
    r.add("clock", time.nowMs() > 1_600_000_000_000 ? "sane" : "insane");
    const b = random.bytes(16);
    r.step("random", b).add("len", b.ok ? b.unwrap().byteLength.toString() : "");
    r.step("too-many", random.bytes(2 * 1024 * 1024));
    r.add("uuid", random.uuid().length.toString());
    log.info("probe basics");
    r.add("math", Math.random() < 1 ? "ok" : "bad");
  } else if (m == "approval") {
    const a = approval.request("probe", 1000);
    r.step("request", a).add("approved", a.ok ? (a.unwrap().approved ? "yes" : "no") : "");
  } else if (m == "identity") {
    r.step("resolve", identity.resolve("test", "u1"));
  } else if (m == "security") {
    const c = security.check("kv");
    r.step("check", c).add("kv", c.ok && c.unwrap().allowed ? "allowed" : "refused");
  } else if (m == "hooks") {
    const h = hooks.trigger("probe", '{"x":1}');
    r.step("trigger", h).add("outcome", h.ok ? h.unwrap().outcome : "");
  } else if (m == "uplink") {
    r.step("register", uplink.register("probe-link", "test"));
  } else if (m == "http") {
    const res = http.get(args.url);
    r.step("get", res).add("body", res.ok ? res.unwrap().text() : "");
  } else if (m == "httpstream") {
    const st = http.stream(new http.HttpRequest("GET", args.url));
    r.step("start", st);
    if (st.ok) {
      const s = st.unwrap();
      r.add("status", s.status.toString()).add("type", s.header("Content-Type") !== null ? s.header("Content-Type")! : "");
      let body = "";
      let reads = 0;
      while (!s.ended && reads < 100) {
        body += s.readText(5000).unwrapOr("!");
        reads++;
      }
      r.add("body", body).done("close", s.close());
    }
  } else if (m == "background") {
    const child = process.spawn(new process.Command("echo", ["bg"]));
    r.step("spawn", child);
    if (child.ok) {
      let out = "";
      let exit: i32 = -2;
      const deadline = time.nowMs() + 20_000; // reads until it exits: the ABI has no blocking wait
      while (exit == -2 && time.nowMs() < deadline) {
        const logs = child.unwrap().readLogs();
        if (logs.isErr) break;
        out += logs.unwrap().stdout;
        if (!logs.unwrap().running) exit = logs.unwrap().exitCode;
      }
      r.add("stdout", out).add("exit", exit.toString());
    }
  } else if (m == "net") {
    r.step("bind", net.bindUnix("probe"));
  } else if (m == "process") {
    const out = process.run(new process.Command("echo", ["hi"]));
    r.step("run", out).add("stdout", out.ok ? out.unwrap().stdout : "");
  }
  return r.toString();
}

/** Idles, so that the capsule can be an uplink (which must run a loop and signal ready). */
@run
function main(): void {
  runtime.signalReady();
  const sub = ipc.subscribe("probe.v1.idle");
  if (sub.isErr) return;
  while (true) sub.unwrap().recv(60_000);
}
`;

const TOOL = `
[[tool]]
name = "probe"
description = "Probes one SDK module"

[env]
GREETING = { type = "text", default = "hi" }
TOKEN = { type = "secret" }
`;

const ALLOWED = `[package]
name = "probe"
version = "0.1.0"

[wasm]

[capabilities]
fs_read = ["home://probe", "workspace://notes"]
fs_write = ["home://probe", "workspace://notes"]
kv = true
approval = true
identity = "resolve"
uplink = true
http = true
net = ["127.0.0.1:*"]
net_bind = ["unix:probe"]
host_process = ["echo"]
allow_persistent = true

[publish]
"probe.v1.*" = "opaque"
"hooks.v1.probe" = "opaque"

[subscribe]
"probe.v1.*" = "opaque"

[[uplink]]
name = "probe-link"
platform = "test"
${TOOL}`;

const DENIED = `[package]
name = "probe"
version = "0.1.0"

[wasm]

[subscribe]
"probe.v1.idle" = "opaque"
${TOOL}`;

async function writeCapsule(dir: string, manifest: string): Promise<void> {
  await Deno.mkdir(join(dir, "assembly"), { recursive: true });
  await Deno.writeTextFile(join(dir, "Capsule.toml"), manifest);
  await Deno.writeTextFile(join(dir, "assembly", "index.ts"), SOURCE);
}

async function probe(
  k: CapsuleHarness,
  module: string,
  options: { url?: string; principal?: string } = {},
): Promise<Record<string, string>> {
  const r = await k.callTool("probe", { module, url: options.url ?? "" }, {
    principal: options.principal,
  });
  assert.equal(r.isError, false, r.content);
  return r.json();
}

Deno.test("every SDK module works against the real kernel when the manifest allows it", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "astrid-probe-" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (!req.url.endsWith("/stream")) return new Response("pong");
    const parts = ["data: one\n\n", "data: two\n\n", "data: three\n\n"];
    const body = new ReadableStream({
      pull(c) {
        const next = parts.shift();
        if (next === undefined) c.close();
        else c.enqueue(new TextEncoder().encode(next));
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  try {
    await writeCapsule(dir, ALLOWED);
    await using k = await testCapsule(dir, {
      mode: "autonomous",
      workspace: true,
      build: { cacheDir: testBuildCacheDir() },
    });
    await t.step(
      "fs: mkdir, write, read, exists, readdir, stat, unlink; outside fs_* is DENIED",
      async () => {
        assert.deepEqual(await probe(k, "fs"), {
          mkdir: "OK",
          write: "OK",
          read: "OK",
          text: "hello",
          exists: "OK",
          found: "yes",
          readdir: "OK",
          names: "a.txt",
          stat: "OK",
          size: "5.0",
          unlink: "OK",
          outside: "DENIED",
        });
      },
    );
    await t.step("fs in the workspace writes to the session overlay, not the disk", async () => {
      assert.deepEqual(await probe(k, "workspace"), { mkdir: "OK", write: "OK", text: "draft" });
      await assert.rejects(() => Deno.stat(join(k.workspace!.root, "notes", "a.txt")));
    });
    await t.step("kv: set, get, list, a missing key is NOT_FOUND, remove, clear", async () => {
      assert.deepEqual(await probe(k, "kv"), {
        set: "OK",
        get: "OK",
        value: "v",
        list: "OK",
        keys: "k",
        missing: "NOT_FOUND",
        remove: "OK",
        clear: "OK",
      });
    });
    await t.step("kv is per principal: alice does not see default's key", async () => {
      await probe(k, "kvset");
      assert.deepEqual(await probe(k, "kvget"), { get: "OK" });
      assert.deepEqual(await probe(k, "kvget", { principal: "alice" }), { get: "NOT_FOUND" });
    });
    await t.step("ipc: subscribe, publish, recv the message, close", async () => {
      assert.deepEqual(await probe(k, "ipc"), {
        subscribe: "OK",
        publish: "OK",
        recv: "OK",
        payload: '{"n":1}',
        close: "OK",
      });
    });
    await t.step("env: a default value, an undeclared field, an unset secret", async () => {
      assert.deepEqual(await probe(k, "env"), {
        get: "OK",
        greeting: "hi",
        undeclared: "NOT_FOUND",
        hasSecret: "OK",
        secret: "unset",
      });
    });
    await t.step(
      "runtime: the caller is the message's principal; the invocation names the tool",
      async () => {
        assert.deepEqual(await probe(k, "runtime", { principal: "bob" }), {
          caller: "OK",
          principal: "bob",
          tool: "probe",
        });
      },
    );
    await t.step("time, random, log, Math.random (seeded over the ABI)", async () => {
      assert.deepEqual(await probe(k, "basics"), {
        clock: "sane",
        random: "OK",
        len: "16",
        "too-many": "LIMIT_EXCEEDED",
        uuid: "36",
        math: "ok",
      });
      assert.match(await k.logText({ waitFor: "probe basics" }), /INFO \[[^\]]+\] probe basics/);
    });
    await t.step("approval: autonomous mode approves without asking", async () => {
      assert.deepEqual(await probe(k, "approval"), { request: "OK", approved: "yes" });
    });
    await t.step(
      "identity: an unknown outside user is NOT_FOUND (the gate let it through)",
      async () => {
        assert.deepEqual(await probe(k, "identity"), { resolve: "NOT_FOUND" });
      },
    );
    await t.step("security, hooks, uplink", async () => {
      assert.deepEqual(await probe(k, "security"), { check: "OK", kv: "allowed" });
      assert.deepEqual(await probe(k, "hooks"), { trigger: "OK", outcome: "continue" });
      assert.deepEqual(await probe(k, "uplink"), { register: "OK" });
    });
    await t.step("http: a GET to a local server (the net entry names 127.0.0.1)", async () => {
      const url = `http://127.0.0.1:${server.addr.port}/ping`;
      assert.deepEqual(await probe(k, "http", { url }), { get: "OK", body: "pong" });
    });
    await t.step("http streaming: the body chunk by chunk until it ends", async () => {
      const url = `http://127.0.0.1:${server.addr.port}/stream`;
      assert.deepEqual(await probe(k, "httpstream", { url }), {
        start: "OK",
        status: "200",
        type: "text/event-stream",
        body: "data: one\n\ndata: two\n\ndata: three\n\n",
        close: "OK",
      });
    });
    await t.step("process in the background: its output and exit code", async () => {
      assert.deepEqual(await probe(k, "background"), { spawn: "OK", stdout: "bg\n", exit: "0" });
    });
    await t.step("net: bind a Unix socket", async () => {
      assert.deepEqual(await probe(k, "net"), { bind: "OK" });
    });
    await t.step("process: run echo in the session's sandbox", async () => {
      assert.deepEqual(await probe(k, "process"), { run: "OK", stdout: "hi\n" });
    });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the same calls are DENIED when the manifest does not grant them", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "astrid-probe-" });
  try {
    await writeCapsule(dir, DENIED);
    await using k = await testCapsule(dir, {
      mode: "autonomous",
      build: { cacheDir: testBuildCacheDir() },
    });
    await t.step("fs, kv, ipc", async () => {
      const fs = await probe(k, "fs");
      for (const step of ["mkdir", "write", "read", "exists", "readdir", "stat", "unlink"]) {
        assert.equal(fs[step], "DENIED", step);
      }
      assert.deepEqual(await probe(k, "kvget"), { get: "DENIED" });
      assert.deepEqual(await probe(k, "ipc"), { subscribe: "DENIED", publish: "DENIED" });
    });
    await t.step("approval, identity, hooks, uplink", async () => {
      assert.deepEqual(await probe(k, "approval"), { request: "DENIED", approved: "" });
      assert.deepEqual(await probe(k, "identity"), { resolve: "DENIED" });
      assert.deepEqual(await probe(k, "hooks"), { trigger: "DENIED", outcome: "" });
      assert.deepEqual(await probe(k, "uplink"), { register: "DENIED" });
    });
    await t.step("security reports the refusal without failing", async () => {
      assert.deepEqual(await probe(k, "security"), { check: "OK", kv: "refused" });
    });
    await t.step("http, net, process", async () => {
      assert.deepEqual(await probe(k, "http", { url: "http://127.0.0.1:9/" }), {
        get: "DENIED",
        body: "",
      });
      assert.deepEqual(await probe(k, "net"), { bind: "DENIED" });
      assert.deepEqual(await probe(k, "process"), { run: "DENIED", stdout: "" });
    });
    await t.step("what needs no capability still works", async () => {
      assert.deepEqual(await probe(k, "env"), {
        get: "OK",
        greeting: "hi",
        undeclared: "NOT_FOUND",
        hasSecret: "OK",
        secret: "unset",
      });
      assert.equal((await probe(k, "basics")).clock, "sane");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
