import assert from "node:assert/strict";
import { join } from "node:path";
import { hasCode } from "../../kernel/errors.ts";
import { parseWasmBinary } from "../../kernel/capsule/engine/wasm/mod.ts";
import { compileCapsule } from "./compiler.ts";
import type { BuildError } from "./errors.ts";

async function capsule(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "astrid-tf-" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
  return dir;
}

const ENTRIES = `import { Intercept, Invocation, Outcome, Result } from "@astrid/sdk";
import { helper } from "./more";

@json class Args { name!: string; }
@json class Out { text: string = ""; }

@tool
function greet(args: Args): Out { const o = new Out(); o.text = helper(args.name); return o; }

@tool("read-file")
function readFile(args: Args, inv: Invocation): Result<Out> { return Result.fail<Out>(inv.topic); }

@command("go")
function go(text: string): string { return text; }

@interceptor("user.v1.prompt", 10)
function guard(payload: Args): Intercept { return Intercept.next(); }

@install
function setup(): Outcome { return Outcome.done(); }

@upgrade
function migrate(inv: Invocation): void {}

@run
function main(): void {}
`;

Deno.test("the entry-point transform generates an ABI export per decorated function", async (t) => {
  const dir = await capsule({
    "assembly/index.ts": ENTRIES,
    "assembly/more.ts": `import { Outcome } from "@astrid/sdk";
export function helper(s: string): string { return "hi " + s; }
@tool
function elsewhere(): Outcome { return Outcome.done(); }
`,
  });
  try {
    const out = await compileCapsule(dir, {
      debug: true,
      handlers: { commandHandlers: new Map([["go", "run_go"]]) },
    });
    const exports = parseWasmBinary(out.wasm).exports.filter((e) => e.kind === "function");
    await t.step("exports have the default names, or the manifest's, all (i32, i32) -> i64", () => {
      const names = exports.map((e) => e.name).sort();
      assert.deepEqual(names, [
        "astrid_alloc",
        "astrid_install",
        "astrid_run",
        "astrid_upgrade",
        "intercept_guard",
        "run_go",
        "tool_elsewhere",
        "tool_greet",
        "tool_read_file",
      ]);
      for (const e of exports.filter((e) => e.name !== "astrid_alloc")) {
        assert.deepEqual(e.type, { params: ["i32", "i32"], results: ["i64"] }, e.name);
      }
    });
    await t.step("each entry point is reported with where it is", () => {
      const byExport = Object.fromEntries(out.entryPoints.map((e) => [e.export, e]));
      assert.equal(byExport.tool_read_file.name, "read-file");
      assert.equal(byExport.tool_read_file.line, 11);
      assert.equal(byExport.tool_read_file.column, 10);
      assert.equal(byExport.intercept_guard.topic, "user.v1.prompt");
      assert.equal(byExport.intercept_guard.priority, 10);
      assert.equal(byExport.tool_elsewhere.file, "assembly/more.ts");
      assert.deepEqual(byExport.tool_elsewhere.inputSchema, { type: "object", properties: {} });
      assert.deepEqual(byExport.tool_greet.inputSchema, {
        type: "object",
        properties: { name: { type: "string" } },
        required: ["name"],
      });
    });
    await t.step("the module imports only from astrid", () => {
      for (const i of parseWasmBinary(out.wasm).imports) assert.equal(i.module, "astrid");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function failure(source: string): Promise<string[]> {
  const dir = await capsule({
    "assembly/index.ts": `import { Intercept, Invocation } from "@astrid/sdk";\n${source}`,
  });
  try {
    await compileCapsule(dir, { debug: true });
  } catch (err) {
    assert.ok(hasCode(err, "BUILD_COMPILE_FAILED"), String(err));
    return ((err as BuildError).data?.diagnostics ?? []).map((d) =>
      `${d.file}:${d.line}:${d.column}: ${d.message}`
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  throw new Error("compiled");
}

Deno.test("the entry-point transform refuses malformed entry points, located", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "a bad tool name",
      `@tool("no spaces") function a(): void {}`,
      /^assembly\/index\.ts:2:1: Invalid tool name "no spaces"/,
    ],
    [
      "a generic function",
      `@tool function a<T>(x: T): void {}`,
      /^assembly\/index\.ts:2:1: @tool function "a" is generic; entry points take concrete types/,
    ],
    [
      "three parameters",
      `@tool function a(x: string, y: string, z: string): void {}`,
      /@tool function "a" takes 3 parameters/,
    ],
    [
      "an interceptor without topic",
      `@interceptor function a(): void {}`,
      /Malformed @interceptor: @interceptor\("topic\.pattern"\)/,
    ],
    [
      "a run loop that returns a value",
      `@run function a(): i32 { return 1; }`,
      /@run function "a" must return void/,
    ],
    [
      "a second parameter that is not an Invocation",
      `@tool function a(x: string, y: string): void {}`,
      /second parameter of @tool function "a" must be an Invocation/,
    ],
    [
      "a function named like its export",
      `@tool("x") function tool_x(): void {}`,
      /@tool function "tool_x" has the name of its export "tool_x"; rename the function \(e\.g\. "toolX"\)/,
    ],
    [
      "two entry decorators",
      `@tool @command function a(): void {}`,
      /has 2 entry-point decorators; keep one/,
    ],
    [
      "an entry point in a namespace",
      `namespace n { @tool function a(): void {} }`,
      /is inside a namespace/,
    ],
    [
      "an argument that is not a class",
      `@tool function a(x: Nope): void {}`,
      /must be a @json class .* "Nope" is not a class/,
    ],
  ];
  for (const [what, source, expected] of cases) {
    await t.step(what, async () => {
      const messages = await failure(source);
      assert.ok(messages.some((m) => expected.test(m)), messages.join("\n"));
    });
  }
});
