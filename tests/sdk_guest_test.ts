/**
 * The guest SDK's contract with the kernel, proven with a capsule built by `astrid build` and
 * run in a real kernel: host statuses become typed errors and handler replies carry them back;
 * an abort traps the invocation and logs its message; interceptors answer Continue (rewritten),
 * Final and Deny; commands run like tools; strings cross the ABI as UTF-8 in both directions;
 * memory survives heavy allocation across host calls and many invocations (the incremental
 * collector with pinned host regions). Also the walls: the SDK's status list is the host's, and
 * the SDK imports nothing of the kernel.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HostStatus } from "../host_abi/mod.ts";
import { CapsuleRegistry } from "../kernel/capsule/mod.ts";
import { principalId } from "../kernel/identity/mod.ts";
import { messageJson, testBuildCacheDir, testCapsule } from "../sdk/testing/mod.ts";

const SDK = fileURLToPath(new URL("../sdk/assemblyscript/", import.meta.url));

Deno.test("the SDK's status list is the host's, number for number", async () => {
  const text = await Deno.readTextFile(join(SDK, "status.ts"));
  const consts = Object.fromEntries(
    [...text.matchAll(/export const ([A-Z_]+): u32 = (\d+);/g)]
      .filter(([, name]) => name !== "LAST_STATUS")
      .map(([, name, n]) => [name, Number(n)]),
  );
  assert.deepEqual(consts, { ...HostStatus });
  const names = Object.fromEntries(
    [...text.matchAll(/case (\d+): return "([A-Z_]+)";/g)].map(([, n, name]) => [name, Number(n)]),
  );
  assert.deepEqual(names, { ...HostStatus });
  const last = /export const LAST_STATUS: u32 = (\d+);/.exec(text)![1];
  assert.equal(Number(last), Math.max(...Object.values(HostStatus)));
});

Deno.test("the guest SDK imports nothing from the kernel or the host (only itself and json-as)", async () => {
  const walk = async (dir: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) out.push(...await walk(p));
      else if (e.name.endsWith(".ts")) out.push(p);
    }
    return out;
  };
  for (const file of await walk(SDK)) {
    const text = (await Deno.readTextFile(file))
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    for (
      const [, spec] of text.matchAll(
        /(?:import|export)[^"']*from\s+["']([^"']+)["']|import\s+["']([^"']+)["']/g,
      )
    ) {
      if (spec === undefined) continue;
      assert.ok(
        spec === "json-as" || spec.startsWith("./") ||
          spec.startsWith("../") && !spec.startsWith("../../"),
        `${file} imports "${spec}"`,
      );
    }
  }
});

const TOML = `[package]
name = "guest"
version = "0.1.0"

[wasm]

[capabilities]
kv = true

[subscribe]
"guest.v1.rewrite" = { wit = "opaque", handler = "on_rewrite" }
"guest.v1.final" = { wit = "opaque", handler = "on_final" }
"guest.v1.deny" = { wit = "opaque", handler = "on_deny" }

[[tool]]
name = "fail"
description = "Fails with a status"

[[tool]]
name = "echo"
description = "Echoes text through kv"

[[tool]]
name = "crash"
description = "Aborts"

[[tool]]
name = "churn"
description = "Allocates a lot across host calls"

[[command]]
name = "shout"
description = "Upper-cases its argument"
handler = "command_shout"
`;

const SOURCE = `import { Intercept, Invocation, kv, log, Result, Status } from "@astrid/sdk";

@json class Text { text!: string; }
@json class Count { rounds: i32 = 0; }
@json class Doubled { text: string = ""; count: i32 = 0; }

@tool
function fail(args: Text): Result<Text> {
  if (args.text == "missing") return kv.getJson<Text>("nope");
  return Result.fail<Text>("Refusing " + args.text, Status.CONFLICT);
}

@tool
function echo(args: Text): Text {
  kv.setText("echo", args.text).unwrap();
  const out = new Text();
  out.text = kv.getText("echo").unwrap();
  return out;
}

@tool
function crash(args: Text): string {
  log.info("before the crash");
  abort("crashed on " + args.text);
  return "";
}

@tool
function churn(args: Count): string {
  let sum: u64 = 0;
  for (let i = 0; i < args.rounds; i++) {
    const big = "x".repeat(1000 + i) + i.toString();
    kv.setText("c" + (i % 7).toString(), big).unwrap();
    const back = kv.getText("c" + (i % 7).toString()).unwrap();
    if (back != big) abort("corrupted at round " + i.toString());
    sum += <u64>back.length;
  }
  return sum.toString();
}

@command("shout")
function shout(text: string): string {
  return text.toUpperCase();
}

@interceptor("guest.v1.rewrite")
function onRewrite(payload: Text, inv: Invocation): Intercept {
  const d = new Doubled();
  d.text = payload.text + payload.text;
  d.count = 2;
  return Intercept.rewrite<Doubled>(d);
}

@interceptor("guest.v1.final")
function onFinal(payload: Text): Intercept {
  const d = new Doubled();
  d.text = "answered " + payload.text;
  return Intercept.final<Doubled>(d);
}

@interceptor("guest.v1.deny")
function onDeny(payload: Text): Intercept {
  return Intercept.deny("No " + payload.text);
}
`;

Deno.test("the guest SDK round-trips statuses, text, interceptor verdicts and memory", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "astrid-guest-" });
  try {
    await Deno.mkdir(join(dir, "assembly"));
    await Deno.writeTextFile(join(dir, "Capsule.toml"), TOML);
    await Deno.writeTextFile(join(dir, "assembly", "index.ts"), SOURCE);
    await using k = await testCapsule(dir, { build: { cacheDir: testBuildCacheDir() } });

    await t.step("Result.fail() answers the tool call with its status and message", async () => {
      const r = await k.callTool("fail", { text: "that" });
      assert.deepEqual([r.isError, r.code, r.content], [true, "CONFLICT", "Refusing that"]);
    });
    await t.step("a host error passed up keeps the host's status and message", async () => {
      const r = await k.callTool("fail", { text: "missing" });
      assert.deepEqual([r.isError, r.code, r.content], [
        true,
        "NOT_FOUND",
        'Key "nope" does not exist',
      ]);
    });
    await t.step("malformed arguments are INVALID_ARGUMENT, not a trap", async () => {
      const r = await k.callTool("echo", [1, 2]);
      assert.equal(r.code, "INVALID_ARGUMENT");
      assert.match(r.content, /^Malformed arguments: expected a JSON object, got \[1,2\]/);
    });
    await t.step("text crosses the ABI as UTF-8 both ways", async () => {
      for (const text of ['ключ 🔑 "quoted"\n\ttab', "x".repeat(300_000)]) {
        const r = await k.callTool("echo", { text });
        assert.equal(r.isError, false, r.content.slice(0, 200));
        assert.equal(r.json<{ text: string }>().text, text);
      }
    });
    await t.step("abort() traps the invocation and logs its message at error level", async () => {
      const r = await k.callTool("crash", { text: "purpose" });
      assert.equal(r.code, "WASM_TRAP");
      const log = await k.logText({ waitFor: "crashed on purpose" });
      assert.match(log, /INFO \[[^\]]+\] before the crash/);
      assert.match(log, /ERROR \[[^\]]+\] crashed on purpose/);
    });
    await t.step(
      "heavy allocation across host calls and many invocations stays intact",
      async () => {
        const r = await k.callTool("churn", { rounds: 3000 });
        assert.equal(
          r.content,
          String(
            Array.from({ length: 3000 }, (_, i) => 1000 + i + String(i).length).reduce((a, b) =>
              a + b
            ),
          ),
        );
        for (let i = 0; i < 150; i++) {
          const e = await k.callTool("echo", { text: `n${i}` });
          assert.equal(e.json<{ text: string }>().text, `n${i}`);
        }
      },
    );
    await t.step("an interceptor rewrites, answers Final, or denies", async () => {
      const rewritten = await k.waitFor(
        "guest.v1.rewrite",
        () => k.publish("guest.v1.rewrite", { text: "ab" }),
      );
      assert.deepEqual(messageJson(rewritten), { text: "abab", count: 2 });
      const final = await k.publish("guest.v1.final", { text: "q" });
      assert.equal(final.outcome, "final");
      assert.deepEqual(
        final.outcome === "final" && final.reply ? messageJson(final.reply) : undefined,
        { text: "answered q", count: 0 },
      );
      const denied = await k.publish("guest.v1.deny", { text: "way" });
      assert.equal(denied.outcome, "denied");
      assert.equal(denied.outcome === "denied" ? denied.reason : "", "No way");
    });
    await t.step("a @command runs with its arguments and answers like a tool", async () => {
      const host = k.daemon.capsules as unknown as { registry: CapsuleRegistry };
      const loaded = host.registry.capsule("guest")!;
      const reply = await loaded.runCommand("shout", "hey there", {
        principal: principalId("default"),
      });
      assert.deepEqual(reply, { isError: false, content: "HEY THERE" });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
