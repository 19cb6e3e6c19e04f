import assert from "node:assert/strict";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import type { CapsuleManifest } from "./manifest.ts";
import { parseManifest } from "./manifest_parser.ts";
import { effectiveExports, interfaceMatches, toposortCapsules } from "./toposort.ts";

/** A manifest named `name` with extra TOML after its [package]. */
function capsule(name: string, body = "", version = "1.0.0"): CapsuleManifest {
  return parseManifest(`[package]\nname = "${name}"\nversion = "${version}"\n${body}`, {
    file: `${name}/Capsule.toml`,
  });
}

Deno.test("interfaceMatches() matches single-segment wildcards on typed prefixes only", async (t) => {
  await t.step("exact names outside typed prefixes", () => {
    assert.ok(interfaceMatches("astrid:llm", "astrid:llm"));
    assert.ok(!interfaceMatches("astrid:llm", "astrid:kv"));
    assert.ok(!interfaceMatches("astrid:*", "astrid:llm"));
  });
  await t.step("a * on either side is one segment", () => {
    assert.ok(interfaceMatches("topic:llm.v1.stream.*", "topic:llm.v1.stream.anthropic"));
    assert.ok(interfaceMatches("topic:llm.v1.stream.openai", "topic:llm.v1.stream.*"));
    assert.ok(interfaceMatches("topic:llm.*.anthropic", "topic:llm.stream.anthropic"));
    assert.ok(!interfaceMatches("topic:llm.*.anthropic", "topic:llm.stream.openai"));
    assert.ok(!interfaceMatches("topic:a.*", "topic:a.b.c"));
    assert.ok(!interfaceMatches("topic:a.b", "topic:a.b.c"));
    assert.ok(interfaceMatches("llm:*", "llm:anthropic"));
    assert.ok(interfaceMatches("uplink:*", "uplink:telegram"));
    assert.ok(interfaceMatches("tool:*", "tool:read_file"));
  });
  await t.step("prefixes must be equal", () => {
    assert.ok(!interfaceMatches("topic:foo", "tool:foo"));
  });
});

Deno.test("effectiveExports() derives tool:, topic: and uplink: ids at the package version", () => {
  const m = capsule(
    "tg",
    `[wasm]
[capabilities]
uplink = true
[exports]
"astrid:chat" = "2.0.0"
[publish]
"user.v1.prompt" = { wit = "opaque" }
[[tool]]
name = "send"
description = "Sends"
[[uplink]]
name = "telegram"
platform = "telegram"
`,
    "0.3.0",
  );
  assert.deepEqual(effectiveExports(m).map((e) => `${e.id}@${e.version}`), [
    "astrid:chat@2.0.0",
    "tool:send@0.3.0",
    "topic:user.v1.prompt@0.3.0",
    "uplink:telegram@0.3.0",
  ]);
});

Deno.test("toposortCapsules() orders providers first with versions matched", async (t) => {
  await t.step("a provider loads before its importer; ties break by name", () => {
    const plan = toposortCapsules([
      capsule("orchestrator", `[imports.astrid]\nllm = "^1.0"\nsession = "^1"`),
      capsule("zeta"),
      capsule("anthropic", `[exports.astrid]\nllm = "1.2.0"`),
      capsule("session", `[exports]\n"astrid:session" = "1.0.0"`),
      capsule("alpha"),
    ]);
    assert.deepEqual(plan.order, ["alpha", "anthropic", "session", "orchestrator", "zeta"]);
    assert.deepEqual(plan.blocked, []);
  });
  await t.step("the same input in another order gives the same plan", () => {
    const a = [
      capsule("c", `[imports]\n"astrid:x" = "*"`),
      capsule("b", `[exports]\n"astrid:x" = "1.0.0"`),
      capsule("a"),
    ];
    assert.deepEqual(toposortCapsules(a), toposortCapsules([...a].reverse()));
  });
  await t.step("an export outside the range does not satisfy; the message says what exists", () => {
    const plan = toposortCapsules([
      capsule("app", `[imports.astrid]\nllm = "^1.0"`),
      capsule("new-llm", `[exports.astrid]\nllm = "2.1.0"`),
    ]);
    assert.deepEqual(plan.order, ["new-llm"]);
    assert.equal(plan.blocked.length, 1);
    assert.equal(plan.blocked[0].name, "app");
    assert.deepEqual(plan.blocked[0].missing, ["astrid:llm"]);
    assert.match(plan.blocked[0].reason, /import "astrid:llm" "\^1.0" is exported by no capsule/);
    assert.match(plan.blocked[0].reason, /"new-llm" exports 2\.1\.0/);
    assert.match(plan.blocked[0].reason, /mark the import optional = true/);
  });
  await t.step("every matching provider loads before the importer", () => {
    const plan = toposortCapsules([
      capsule("a-consumer", `[imports]\n"topic:llm.v1.stream.*" = "*"`),
      capsule("openai", `[publish]\n"llm.v1.stream.openai" = { wit = "opaque" }`),
      capsule("anthropic", `[publish]\n"llm.v1.stream.anthropic" = { wit = "opaque" }`),
    ]);
    assert.deepEqual(plan.order, ["anthropic", "openai", "a-consumer"]);
  });
});

Deno.test("toposortCapsules() blocks a missing required import and its dependents only", () => {
  const plan = toposortCapsules([
    capsule(
      "needs-missing",
      `[imports]\n"astrid:nothing" = "^1"\n[exports]\n"astrid:mid" = "1.0.0"`,
    ),
    capsule("needs-mid", `[imports]\n"astrid:mid" = "^1"`),
    capsule("fine"),
  ]);
  assert.deepEqual(plan.order, ["fine"]);
  assert.deepEqual(plan.blocked.map((b) => b.name), ["needs-mid", "needs-missing"]);
  assert.match(
    plan.blocked[0].reason,
    /"astrid:mid" "\^1" is exported only by blocked capsule "needs-missing"/,
  );
  assert.match(plan.blocked[1].reason, /"astrid:nothing" "\^1" is exported by no capsule/);
});

Deno.test("toposortCapsules() lets an optional import order the load but never block it", async (t) => {
  await t.step("missing optional provider: loads anyway", () => {
    const plan = toposortCapsules([
      capsule("app", `[imports]\n"astrid:kv" = { version = "^1", optional = true }`),
    ]);
    assert.deepEqual(plan.order, ["app"]);
    assert.deepEqual(plan.blocked, []);
  });
  await t.step("present optional provider: loads first", () => {
    const plan = toposortCapsules([
      capsule("app", `[imports]\n"astrid:kv" = { version = "^1", optional = true }`),
      capsule("zkv", `[exports]\n"astrid:kv" = "1.0.0"`),
    ]);
    assert.deepEqual(plan.order, ["zkv", "app"]);
  });
  await t.step("an optional edge gives way inside a cycle", () => {
    const plan = toposortCapsules([
      capsule("a", `[imports]\n"astrid:b" = "^1"\n[exports]\n"astrid:a" = "1.0.0"`),
      capsule(
        "b",
        `[imports]\n"astrid:a" = { version = "^1", optional = true }\n[exports]\n"astrid:b" = "1.0.0"`,
      ),
    ]);
    assert.deepEqual(plan.order, ["b", "a"]);
  });
});

Deno.test("toposortCapsules() reports a cycle naming its capsules in order", async (t) => {
  const ring = () => [
    capsule("c", `[imports]\n"astrid:a" = "^1"\n[exports]\n"astrid:c" = "1.0.0"`),
    capsule("a", `[imports]\n"astrid:b" = "^1"\n[exports]\n"astrid:a" = "1.0.0"`),
    capsule("b", `[imports]\n"astrid:c" = "^1"\n[exports]\n"astrid:b" = "1.0.0"`),
    capsule("after", `[imports]\n"astrid:a" = "^1"`),
    capsule("free"),
  ];
  await t.step("thrown as CAPSULE_CYCLE by default", () => {
    assert.throws(
      () => toposortCapsules(ring()),
      (err: unknown) => {
        assert.ok(err instanceof CapsuleError);
        assert.equal(err.code, CapsuleCode.CAPSULE_CYCLE);
        assert.deepEqual(err.data?.cycle, ["a", "b", "c", "a"]);
        assert.match(
          err.message,
          /a → b → c → a \("a" imports "astrid:b" from "b", "b" imports "astrid:c" from "c", "c" imports "astrid:a" from "a"\)/,
        );
        return true;
      },
    );
  });
  await t.step(
    "with blockCycles, the cycle and its dependents are blocked and the rest loads",
    () => {
      const plan = toposortCapsules(ring(), { blockCycles: true });
      assert.deepEqual(plan.order, ["free"]);
      assert.deepEqual(plan.blocked.map((b) => b.name), ["a", "after", "b", "c"]);
      assert.match(plan.blocked[0].reason, /in a dependency cycle: a → b → c → a/);
      assert.match(plan.blocked[1].reason, /depends on capsules in a dependency cycle/);
    },
  );
});

Deno.test("toposortCapsules() loads uplink capsules first", () => {
  const plan = toposortCapsules([
    capsule("aaa-tool"),
    capsule("zz-telegram", `[capabilities]\nuplink = true`),
    capsule("cli", `[capabilities]\nuplink = true`),
    capsule("bbb", `[imports]\n"uplink:*" = "*"`),
    capsule("tg2", `[capabilities]\nuplink = true\n[[uplink]]\nname = "tg"\nplatform = "telegram"`),
  ]);
  assert.deepEqual(plan.order, ["cli", "tg2", "zz-telegram", "aaa-tool", "bbb"]);
});

Deno.test("toposortCapsules() refuses two capsules with one name", () => {
  assert.throws(
    () => toposortCapsules([capsule("x"), capsule("x")]),
    (err: unknown) => err instanceof CapsuleError && err.code === CapsuleCode.CAPSULE_DUPLICATE,
  );
});
