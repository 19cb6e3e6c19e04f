/**
 * The AssemblyScript compiler as `astrid build` runs it: in-process, with the guest SDK served
 * as the package `@astrid/sdk`, json-as and the entry-point transform applied, AssemblyScript's
 * `env.abort`/`env.seed`/`env.trace` aliased to SDK functions over the host ABI, and every
 * diagnostic located as `file:line:column`.
 *
 * @module
 */
import asc from "assemblyscript/asc";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { BuildCode, BuildError, type CompileDiagnostic, formatDiagnostic } from "./errors.ts";
import type { AsDiagnostic } from "./_as_ast.ts";
import { type EntryPoint, type EntryPointOptions, entryPointTransform } from "./transform.ts";

/** The guest SDK's sources (`sdk/assemblyscript/`). */
export const SDK_SOURCE_DIR: string = fromFileUrl(new URL("../assemblyscript/", import.meta.url));
/** The package name capsules import the SDK by. */
export const SDK_PACKAGE = "@astrid/sdk";
/** Where AssemblyScript libraries (json-as, xjb-as) are installed. */
export const NODE_MODULES_DIR: string = fromFileUrl(
  new URL("../../node_modules/", import.meta.url),
);
/** The default entry file of a capsule, relative to its directory. */
export const DEFAULT_ENTRY = "assembly/index.ts";

/** A directory that does not exist: package lookups under it are served from the SDK. */
const VIRTUAL_PACKAGES = fromFileUrl(new URL("../.packages/", import.meta.url));
const VIRTUAL_SDK = join(VIRTUAL_PACKAGES, SDK_PACKAGE);
/** The extra entry every capsule is compiled with (exports `astrid_alloc`). */
const EXPORTS_ENTRY = "__astrid_exports__.ts";
const EXPORTS_TEXT = `export * from "${SDK_PACKAGE}/internal/exports";\n`;
const ENV_MODULE = `~lib/${SDK_PACKAGE}/internal/env`;
const OUT_FILE = "capsule.wasm";

/** The optimisation flags of a release build (what `astrid build` uses without `--debug`). */
export const RELEASE_FLAGS: readonly string[] = ["--optimizeLevel", "3", "--shrinkLevel", "2"];

/** Options of {@link compileCapsule}. */
export interface CompileOptions {
  /** The entry file, relative to the capsule directory (default `assembly/index.ts`). */
  entry?: string;
  /** Keep debug information and names (default false: optimised, stripped). */
  debug?: boolean;
  /** What the manifest declares, so exports get the names it expects. */
  handlers?: Omit<EntryPointOptions, "entryFiles">;
}

/** What {@link compileCapsule} produced. */
export interface CompileOutput {
  /** The module. */
  wasm: Uint8Array;
  /** The entry points the transform generated. */
  entryPoints: EntryPoint[];
  /** Warnings (errors throw). */
  warnings: CompileDiagnostic[];
  /** Files read from the capsule's side (not the SDK or libraries), relative to its directory. */
  inputs: string[];
  /** Compile time, ms. */
  ms: number;
}

let queue: Promise<unknown> = Promise.resolve();

/** Runs `task` after every earlier compile in this process (the compiler is not reentrant). */
function serialized<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.then(task, task);
  queue = run.catch(() => {});
  return run;
}

function severityOf(category: number): CompileDiagnostic["severity"] {
  return category >= 3 ? "error" : category === 2 ? "warning" : "info";
}

/** Line and column (1-based) of offset `pos` in `text`. */
function lineColumnOf(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < pos; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: pos - start + 1 };
}

function diagnosticOf(
  d: AsDiagnostic,
  textOf: (path: string) => string | undefined,
): CompileDiagnostic {
  const message = d.message.replace(/^User-defined: /, "");
  const code = d.code === 102 ? "ASTRID" : d.code < 1000 ? `AS${d.code}` : `TS${d.code}`;
  const out: CompileDiagnostic = { severity: severityOf(d.category), code, message };
  if (d.range !== null && d.range.source !== null) {
    const path = d.range.source.normalizedPath;
    out.file = path.replace(/^~lib\/@astrid\/sdk\//, "@astrid/sdk/");
    const text = textOf(path);
    if (text !== undefined) Object.assign(out, lineColumnOf(text, d.range.start));
  }
  return out;
}

/**
 * Compiles the AssemblyScript capsule in `dir` (its `assembly/index.ts`) to a core wasm module
 * that imports only from `astrid`. Throws `BUILD_NO_CAPSULE` when the entry file is missing
 * and `BUILD_COMPILE_FAILED` with every error located.
 */
export function compileCapsule(dir: string, options: CompileOptions = {}): Promise<CompileOutput> {
  return serialized(() => compileNow(resolve(dir), options));
}

async function compileNow(dir: string, options: CompileOptions): Promise<CompileOutput> {
  const entry = (options.entry ?? DEFAULT_ENTRY).replaceAll("\\", "/");
  try {
    await Deno.stat(join(dir, entry));
  } catch {
    throw new BuildError(
      BuildCode.BUILD_NO_CAPSULE,
      `Cannot build "${dir}": entry file "${entry}" does not exist; create it or run astrid capsule new`,
      { data: { path: join(dir, entry) } },
    );
  }
  const started = performance.now();
  const outputs = new Map<string, Uint8Array>();
  const inputs = new Set<string>();
  const diagnostics: CompileDiagnostic[] = [];
  const sink = { entryPoints: [] as EntryPoint[], generated: new Map<string, string>() };
  const entryInternal = entry.replace(/\.ts$/, "");
  const transform = entryPointTransform(
    { ...options.handlers, entryFiles: [entryInternal, EXPORTS_ENTRY.replace(/\.ts$/, "")] },
    sink,
  );
  const { default: JsonTransform } = await import("json-as/transform/lib/index.js");
  const args = [
    entry,
    EXPORTS_ENTRY,
    "--outFile",
    OUT_FILE,
    "--baseDir",
    dir,
    "--runtime",
    "incremental",
    "--use",
    `abort=${ENV_MODULE}/astridAbort`,
    "--use",
    `seed=${ENV_MODULE}/astridSeed`,
    "--use",
    `trace=${ENV_MODULE}/astridTrace`,
    "--path",
    VIRTUAL_PACKAGES,
    "--path",
    NODE_MODULES_DIR,
    "--noColors",
    ...(options.debug ? ["--debug"] : RELEASE_FLAGS),
  ];
  const sink2 = { write: (_chunk: Uint8Array | string) => {} };
  const result = await asc.main(args, {
    stdout: sink2,
    stderr: sink2,
    transforms: [JsonTransform, transform] as never[],
    reportDiagnostic: (d) =>
      diagnostics.push(diagnosticOf(d as unknown as AsDiagnostic, (p) => sourceText(dir, p, sink))),
    readFile: async (name, baseDir) => {
      const path = resolve(baseDir, name);
      if (path === join(dir, EXPORTS_ENTRY)) return EXPORTS_TEXT;
      if (path === join(dir, "asconfig.json")) return null; // builds do not depend on it
      let real = path;
      if (path.startsWith(VIRTUAL_SDK + "/")) {
        real = join(SDK_SOURCE_DIR, path.slice(VIRTUAL_SDK.length + 1));
      }
      try {
        const text = await Deno.readTextFile(real);
        if (real === path && !path.startsWith(NODE_MODULES_DIR)) inputs.add(relative(dir, path));
        return text;
      } catch {
        return null;
      }
    },
    writeFile: (name, contents) => {
      outputs.set(
        name,
        typeof contents === "string" ? new TextEncoder().encode(contents) : contents,
      );
    },
    listFiles: () => null,
  });
  const errors = diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0 || result.error !== null) {
    const shown = errors.length > 0 ? errors : [
      {
        severity: "error",
        code: "AS",
        message: result.error?.message ?? "unknown failure",
      } as CompileDiagnostic,
    ];
    throw new BuildError(
      BuildCode.BUILD_COMPILE_FAILED,
      `Cannot compile "${dir}": ${shown.length} error(s)\n` +
        shown.map((d) => `  ${formatDiagnostic(d)}`).join("\n"),
      { data: { path: dir, diagnostics: shown } },
    );
  }
  const wasm = outputs.get(OUT_FILE);
  if (wasm === undefined) {
    throw new BuildError(
      BuildCode.BUILD_COMPILE_FAILED,
      `Cannot compile "${dir}": the compiler wrote no module`,
      {
        data: { path: dir, diagnostics: [] },
      },
    );
  }
  return {
    wasm,
    entryPoints: sink.entryPoints.map((e) => ({ ...e, file: e.file })),
    warnings: diagnostics.filter((d) => d.severity === "warning"),
    inputs: [...inputs].sort(),
    ms: performance.now() - started,
  };
}

/** The text of a source as the compiler named it (for locating diagnostics). */
function sourceText(
  dir: string,
  path: string,
  sink: { generated: ReadonlyMap<string, string> },
): string | undefined {
  const generated = sink.generated.get(path);
  if (generated !== undefined) return generated;
  const tryRead = (file: string) => {
    try {
      return Deno.readTextFileSync(file);
    } catch {
      return undefined;
    }
  };
  if (!path.startsWith("~lib/")) return tryRead(join(dir, path));
  const rest = path.slice(5);
  if (rest.startsWith(`${SDK_PACKAGE}/`)) {
    return tryRead(join(SDK_SOURCE_DIR, rest.slice(SDK_PACKAGE.length + 1)));
  }
  const bundled = asc.libraryFiles[rest.replace(/\.ts$/, "")];
  return bundled ?? tryRead(join(NODE_MODULES_DIR, rest));
}

/**
 * Compiles one AssemblyScript source on its own — no SDK, no json-as, no transform — with the
 * release flags and the incremental runtime: the floor a capsule build is measured against.
 */
export function compileBareModule(source: string): Promise<Uint8Array> {
  return serialized(async () => {
    let out: Uint8Array | undefined;
    const sink = { write: (_chunk: Uint8Array | string) => {} };
    const result = await asc.main(
      [
        "bare.ts",
        "--outFile",
        "bare.wasm",
        "--runtime",
        "incremental",
        ...RELEASE_FLAGS,
        "--noColors",
      ],
      {
        stdout: sink,
        stderr: sink,
        readFile: (name) => (name === "bare.ts" ? source : null),
        writeFile: (name, contents) => {
          if (name === "bare.wasm" && typeof contents !== "string") out = contents;
        },
        listFiles: () => null,
      },
    );
    if (result.error !== null || out === undefined) {
      throw new BuildError(
        BuildCode.BUILD_COMPILE_FAILED,
        `Cannot compile the bare module: ${result.error?.message ?? "no output"}`,
        { data: { diagnostics: [] } },
      );
    }
    return out;
  });
}

/** The version of the AssemblyScript compiler in use. */
export const ASC_VERSION: string = asc.version;

/** Where the SDK's sources are, for hashing (the directory of this file's sibling). */
export const SDK_BUILD_DIR: string = dirname(fromFileUrl(import.meta.url));
