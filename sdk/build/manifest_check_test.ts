import assert from "node:assert/strict";
import { parseManifest } from "../../kernel/capsule/mod.ts";
import { manifestProblems, type ModuleFacts } from "./manifest_check.ts";
import type { EntryPoint } from "./transform.ts";

function manifest(body: string) {
  return parseManifest(`[package]\nname = "m"\nversion = "0.1.0"\n\n[wasm]\n${body}`, {
    file: "Capsule.toml",
  });
}

function entry(
  kind: EntryPoint["kind"],
  name: string,
  exp: string,
  extra: Partial<EntryPoint> = {},
): EntryPoint {
  return {
    kind,
    name,
    export: exp,
    function: name,
    file: "assembly/index.ts",
    line: 7,
    column: 10,
    ...extra,
  };
}

function facts(
  handlers: string[],
  entryPoints: EntryPoint[] = [],
  others: string[] = [],
): ModuleFacts {
  return {
    handlers: new Set(handlers),
    functions: new Set([...handlers, ...others]),
    entryPoints,
    source: "assembly/index.ts",
  };
}

Deno.test("manifestProblems() accepts a manifest the module implements exactly", () => {
  const m = manifest(`
[subscribe]
"user.v1.prompt" = { wit = "opaque", handler = "guard", priority = 10 }
[[tool]]
name = "read-file"
description = "x"
[[command]]
name = "go"
description = "x"
handler = "command_go"
`);
  const eps = [
    entry("tool", "read-file", "tool_read_file"),
    entry("interceptor", "user.v1.prompt", "guard", { topic: "user.v1.prompt", priority: 10 }),
    entry("command", "go", "command_go"),
  ];
  assert.deepEqual(manifestProblems(m, facts(["tool_read_file", "guard", "command_go"], eps)), []);
});

Deno.test("manifestProblems() names both sides of a tool mismatch", async (t) => {
  await t.step("a declared tool without an implementation", () => {
    const m = manifest(`[[tool]]\nname = "search"\ndescription = "x"\n`);
    const [p] = manifestProblems(m, facts([]));
    assert.match(
      p,
      /\[\[tool\]\] "search" names handler "tool_search", which assembly\/index\.ts does not export: add `@tool function search\(args: …\)`/,
    );
  });
  await t.step("an implemented tool the manifest does not declare", () => {
    const m = manifest("");
    const [p] = manifestProblems(m, facts(["tool_extra"], [entry("tool", "extra", "tool_extra")]));
    assert.match(
      p,
      /^assembly\/index\.ts:7:10: @tool function "extra" implements tool "extra", but Capsule\.toml declares no \[\[tool\]\] named "extra"/,
    );
  });
  await t.step("a hand-written tool_* export the manifest does not declare", () => {
    const [p] = manifestProblems(manifest(""), facts(["tool_raw"]));
    assert.match(
      p,
      /exports "tool_raw", a tool handler by its name, but Capsule\.toml declares no \[\[tool\]\] with handler "tool_raw"/,
    );
  });
  await t.step("a handler exported with the wrong type", () => {
    const m = manifest(`[[tool]]\nname = "t"\ndescription = "x"\n`);
    const [p] = manifestProblems(m, facts([], [], ["tool_t"]));
    assert.match(p, /exports with the wrong type; handlers are \(i32, i32\) -> i64/);
  });
});

Deno.test("manifestProblems() checks interceptor topics and priorities", async (t) => {
  const m = manifest(`[subscribe]\n"a.b" = { wit = "opaque", handler = "h", priority = 5 }\n`);
  await t.step("a priority that differs from the manifest's", () => {
    const eps = [entry("interceptor", "a.b", "h", { topic: "a.b", priority: 7 })];
    const [p] = manifestProblems(m, facts(["h"], eps));
    assert.match(p, /@interceptor\("a\.b", 7\) disagrees with Capsule\.toml's priority = 5/);
  });
  await t.step("a topic the manifest does not bind", () => {
    const eps = [entry("interceptor", "c.d", "x", { topic: "c.d", priority: 100 })];
    const problems = manifestProblems(m, facts(["h", "x"], eps));
    assert.ok(
      problems.some((p) =>
        /no \[subscribe\] entry for it with a handler: add \[subscribe\] "c\.d"/.test(p)
      ),
    );
  });
  await t.step("a declared handler the module does not export", () => {
    const [p] = manifestProblems(m, facts([]));
    assert.match(
      p,
      /\[subscribe\] "a\.b" names handler "h", which assembly\/index\.ts does not export: add `@interceptor\("a\.b", 5\)/,
    );
  });
});
