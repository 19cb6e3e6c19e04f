/**
 * `astrid build [DIR] [--debug] [--out DIR] [--no-cache] [--json]`: compiles the capsule in DIR
 * (default `.`) and writes `DIR/dist/<name>.capsule` (`sdk/build/`, `docs/capsule_authoring.md`).
 *
 * @module
 */
import { resolve } from "node:path";
import { parseVerbArgs } from "./args.ts";
import { UsageError } from "./errors.ts";
import type { CliIo } from "./io.ts";

/** Usage of `astrid build`. */
export const BUILD_USAGE = `Usage: astrid build [DIR] [options]
  Compile the capsule in DIR (default: the current directory) and write DIR/dist/<name>.capsule

Options:
  --debug      Keep debug information and names; no optimisation
  --out DIR    Write the archive into DIR instead of DIR/dist
  --no-cache   Compile even when an identical build is cached
  --json       Print the result as JSON

The cache lives in $ASTRID_BUILD_CACHE (default ~/.cache/astrid/build).`;

function kb(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KB`;
}

function secs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Runs `astrid build …`. */
export async function runBuild(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseVerbArgs("build", args, {
    debug: { type: "boolean" },
    out: { type: "string" },
    "no-cache": { type: "boolean" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.out(BUILD_USAGE);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UsageError("build", `Expected at most one directory, got ${positionals.length}`);
  }
  const dir = resolve(positionals[0] ?? ".");
  const { buildCapsule, formatDiagnostic } = await import("../sdk/build/mod.ts");
  const result = await buildCapsule(dir, {
    debug: values.debug === true,
    ...(values.out !== undefined ? { outDir: resolve(values.out) } : {}),
    ...(values["no-cache"] ? { cacheDir: null } : {}),
  });
  for (const w of result.warnings) io.err(`warning: ${formatDiagnostic(w)}`);
  if (values.json) {
    io.out(JSON.stringify(
      {
        name: result.name,
        version: result.version,
        archive: result.archivePath,
        wasm_hash: result.wasmHash ?? null,
        wasm_bytes: result.wasmBytes,
        source: result.source,
        cached: result.cached,
        ms: Math.round(result.ms),
        entry_points: result.entryPoints,
      },
      null,
      2,
    ));
    return 0;
  }
  io.out(`Built ${result.name} ${result.version} → ${result.archivePath}`);
  if (result.wasmHash !== undefined) {
    io.out(
      `  module:       ${kb(result.wasmBytes)}, ${result.wasmHash}${
        values.debug ? " (debug)" : ""
      }`,
    );
  }
  const kinds = new Map<string, string[]>();
  for (const e of result.entryPoints) {
    const list = kinds.get(e.kind) ?? [];
    list.push(
      e.kind === "interceptor"
        ? `${e.topic} (${e.priority}) → ${e.export}`
        : `${e.name} → ${e.export}`,
    );
    kinds.set(e.kind, list);
  }
  for (const [kind, list] of kinds) io.out(`  ${`${kind}s:`.padEnd(14)}${list.join(", ")}`);
  io.out(`  time:         ${result.cached ? `${secs(result.ms)} (cached)` : secs(result.ms)}`);
  return 0;
}
