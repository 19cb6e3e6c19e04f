/**
 * `astrid capsule new NAME [--template tool|interceptor|provider|run-loop] [--dir DIR]
 * [--force]`: scaffolds a capsule that builds and whose test passes.
 *
 * @module
 */
import { resolve } from "node:path";
import { parseVerbArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid capsule new`. */
export const NEW_USAGE = `Usage: astrid capsule new NAME [options]
  Create a capsule in ./NAME from a template

Options:
  --template T   tool (default), interceptor, provider or run-loop
  --dir DIR      Create it in DIR instead of ./NAME
  --force        Write into a non-empty directory

Then: astrid build NAME && astrid capsule test NAME && astrid capsule install NAME`;

/** Runs `astrid capsule new …`. */
export async function runCapsuleNew(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("capsule new", args, {
    template: { type: "string", short: "t" },
    dir: { type: "string" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(NEW_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError("capsule new", "Expected one capsule NAME, e.g. astrid capsule new hello");
  }
  const name = positionals[0];
  const { scaffoldCapsule, TEMPLATES } = await import("../sdk/build/mod.ts");
  const dir = resolve(values.dir ?? name);
  const template = values.template ?? "tool";
  const files = await scaffoldCapsule(dir, name, { template, force: values.force === true });
  const summary = (TEMPLATES as Record<string, { summary: string }>)[template]?.summary ?? "";
  io.out(`Created capsule "${name}" (${template}: ${summary}) in ${dir}`);
  for (const f of files) io.out(`  ${f}`);
  const shown = values.dir ?? name;
  io.out("");
  io.out(
    `Next: astrid build ${shown} && astrid capsule test ${shown} && astrid capsule install ${shown}`,
  );
  return 0;
}
