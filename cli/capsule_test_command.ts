/**
 * `astrid capsule test [DIR] [--filter TEXT]`: builds the capsule (so compile errors show as
 * `file:line:column`), then runs its `tests/` with `deno test`, the specifier `astrid/testing`
 * mapped to the SDK's test kernel (`sdk/testing/`): each test boots a real in-process kernel
 * with the capsule installed.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseVerbArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid capsule test`. */
export const TEST_USAGE = `Usage: astrid capsule test [DIR] [options]
  Build the capsule in DIR (default .) and run DIR/tests/*_test.ts against a real test kernel

Options:
  --filter TEXT   Run only the tests whose name contains TEXT

Tests import { testCapsule } from "astrid/testing" (docs/capsule_authoring.md).`;

/** The repository's `deno.json` (its imports and unstable flags carry over to the tests). */
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));
/** The test kernel module `astrid/testing` resolves to. */
const TESTING = new URL("../sdk/testing/mod.ts", import.meta.url).href;

/** The import map tests run with: the repository's imports plus `astrid/testing`. */
export async function testImportMap(): Promise<{ imports: Record<string, string> }> {
  const config = JSON.parse(await Deno.readTextFile(CONFIG)) as {
    imports?: Record<string, string>;
  };
  return { imports: { ...config.imports, "astrid/testing": TESTING } };
}

/** Runs `astrid capsule test …`. */
export async function runCapsuleTest(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule test", args, {
    filter: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(TEST_USAGE);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError(
      "capsule test",
      `Expected at most one directory, got ${positionals.length}`,
    );
  }
  const dir = resolve(positionals[0] ?? ".");
  const tests = join(dir, "tests");
  try {
    await Deno.stat(tests);
  } catch {
    throw new UsageError(
      "capsule test",
      `No tests in "${dir}": create tests/<name>_test.ts (see astrid capsule new)`,
    );
  }
  const { buildCapsule } = await import("../sdk/build/mod.ts");
  const built = await buildCapsule(dir);
  io.err(`Built ${built.name} ${built.version}${built.cached ? " (cached)" : ""}; running tests/`);
  const map = await Deno.makeTempFile({ prefix: "astrid-test-map-", suffix: ".json" });
  try {
    await Deno.writeTextFile(map, JSON.stringify(await testImportMap()));
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--allow-all",
        "--config",
        CONFIG,
        "--import-map",
        map,
        ...(values.filter !== undefined ? ["--filter", values.filter] : []),
        tests,
      ],
      cwd: dir,
      stdout: "inherit",
      stderr: "inherit",
    });
    const { code } = await cmd.output();
    return code === 0 ? 0 : 1;
  } finally {
    await Deno.remove(map).catch(() => {});
  }
}
