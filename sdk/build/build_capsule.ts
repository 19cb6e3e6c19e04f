/**
 * `astrid build`: a capsule directory in, `dist/<name>.capsule` out.
 *
 * 1. Parse `Capsule.toml` (every problem located).
 * 2. With `[wasm]`: compile `assembly/index.ts` (AssemblyScript, optimised unless `debug`), or
 *    take the prebuilt module `[wasm] file` names when there is no AssemblyScript entry (any
 *    language that targets wasm32).
 * 3. Check the module: imports only the host ABI; the manifest's tools, commands and
 *    `[subscribe]` handlers are exported, and every decorated entry point is declared.
 * 4. Put derived tool input schemas into the archived manifest (or check the written ones).
 * 5. BLAKE3 the module (and check a pinned `[wasm] hash`), pack `Capsule.toml`, `<name>.wasm`
 *    and `static/…` with `writeArchive`, and write `dist/<name>.capsule`.
 *
 * AssemblyScript builds are cached ({@link BuildCache}); a hit skips steps 2–5.
 *
 * @module
 */
import { join, relative } from "node:path";
import {
  type ArchiveMember,
  type CapsuleManifest,
  parseManifest,
  writeArchive,
} from "../../kernel/capsule/mod.ts";
import { blake3Hex } from "../../kernel/crypto/mod.ts";
import { HOST_FUNCTION_NAMES } from "../../host_abi/mod.ts";
import { atomicWrite } from "../../kernel/home/mod.ts";
import { BuildCache, defaultBuildCacheDir, sdkFingerprint } from "./build_cache.ts";
import { compileCapsule, DEFAULT_ENTRY } from "./compiler.ts";
import { BuildCode, BuildError, type CompileDiagnostic } from "./errors.ts";
import { manifestProblems } from "./manifest_check.ts";
import { applyToolSchemas } from "./manifest_schemas.ts";
import type { EntryPoint } from "./transform.ts";
import { checkModule, functionExports, handlerExports } from "./wasm_check.ts";

/** The manifest's file name. */
export const MANIFEST_FILE = "Capsule.toml";

/** Options of {@link buildCapsule}. */
export interface BuildOptions {
  /** Keep debug information and names (default false). */
  debug?: boolean;
  /** The AssemblyScript entry, relative to the capsule (default `assembly/index.ts`). */
  entry?: string;
  /** Where the archive goes (default `<dir>/dist`). */
  outDir?: string;
  /** The cache directory; `null` turns caching off (default {@link defaultBuildCacheDir}). */
  cacheDir?: string | null;
}

/** What {@link buildCapsule} produced. */
export interface BuildResult {
  /** `[package] name`. */
  name: string;
  /** `[package] version`. */
  version: string;
  /** The archive written. */
  archivePath: string;
  /** Its bytes. */
  archive: Uint8Array;
  /** The manifest as archived (with derived input schemas). */
  manifestText: string;
  /** `blake3:<hex>` of the module, when the capsule has `[wasm]`. */
  wasmHash?: string;
  /** The module's size in bytes (0 without `[wasm]`). */
  wasmBytes: number;
  /** `assemblyscript`, `prebuilt` or `static`. */
  source: "assemblyscript" | "prebuilt" | "static";
  /** Entry points generated from decorators. */
  entryPoints: EntryPoint[];
  /** Compiler warnings. */
  warnings: CompileDiagnostic[];
  /** True when the archive came from the cache. */
  cached: boolean;
  /** Compile time, ms (0 when cached or not compiled). */
  compileMs: number;
  /** Total time, ms. */
  ms: number;
}

async function staticMembers(dir: string): Promise<ArchiveMember[]> {
  const out: ArchiveMember[] = [];
  const root = join(dir, "static");
  const walk = async (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [];
      for await (const e of Deno.readDir(d)) entries.push(e);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        const stat = await Deno.stat(p);
        out.push({
          path: relative(dir, p).replaceAll("\\", "/"),
          data: await Deno.readFile(p),
          ...((stat.mode ?? 0) & 0o111 ? { executable: true } : {}),
        });
      }
    }
  };
  await walk(root);
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function handlerMaps(manifest: CapsuleManifest) {
  return {
    toolHandlers: new Map(manifest.tool.map((t) => [t.name, t.handler])),
    commandHandlers: new Map(
      manifest.command.filter((c) => c.handler !== undefined).map((c) => [c.name, c.handler!]),
    ),
    interceptorHandlers: new Map(
      manifest.subscribe.filter((s) => s.handler !== undefined).map((s) => [s.topic, s.handler!]),
    ),
  };
}

/**
 * Builds the capsule in `dir` into `dist/<name>.capsule`. Throws `ManifestError` for a bad
 * manifest and `BuildError` (`BUILD_NO_CAPSULE`, `BUILD_COMPILE_FAILED`, `BUILD_IMPORT_DENIED`,
 * `BUILD_MANIFEST_MISMATCH`, `BUILD_SCHEMA_MISMATCH`, `BUILD_HASH_MISMATCH`).
 */
export async function buildCapsule(dir: string, options: BuildOptions = {}): Promise<BuildResult> {
  const started = performance.now();
  const manifestPath = join(dir, MANIFEST_FILE);
  let manifestText: string;
  try {
    manifestText = await Deno.readTextFile(manifestPath);
  } catch {
    throw new BuildError(
      BuildCode.BUILD_NO_CAPSULE,
      `Cannot build "${dir}": no ${MANIFEST_FILE} there; run astrid capsule new NAME to start one`,
      { data: { path: manifestPath } },
    );
  }
  const manifest = parseManifest(manifestText, { file: manifestPath });
  const name = manifest.package.name;
  const outDir = options.outDir ?? join(dir, "dist");
  const archivePath = join(outDir, `${name}.capsule`);
  const statics = await staticMembers(dir);
  const entry = options.entry ?? DEFAULT_ENTRY;

  const finish = async (
    archive: Uint8Array,
    rest: Omit<BuildResult, "name" | "version" | "archivePath" | "archive" | "ms">,
  ): Promise<BuildResult> => {
    await Deno.mkdir(outDir, { recursive: true });
    await atomicWrite(archivePath, archive);
    return {
      name,
      version: manifest.package.version,
      archivePath,
      archive,
      ...rest,
      ms: performance.now() - started,
    };
  };

  if (manifest.wasm === undefined) {
    const archive = await writeArchive([
      { path: MANIFEST_FILE, data: new TextEncoder().encode(manifestText) },
      ...statics,
    ]);
    return await finish(archive, {
      manifestText,
      wasmBytes: 0,
      source: "static",
      entryPoints: [],
      warnings: [],
      cached: false,
      compileMs: 0,
    });
  }

  const assemblyscript = await exists(join(dir, entry));
  const prebuilt = join(dir, manifest.wasm.file);
  if (!assemblyscript && !(await exists(prebuilt))) {
    throw new BuildError(
      BuildCode.BUILD_NO_CAPSULE,
      `Cannot build "${dir}": there is no ${entry} to compile and no prebuilt module "${manifest.wasm.file}" ([wasm] file); add one`,
      { data: { path: join(dir, entry) } },
    );
  }

  const cache = options.cacheDir === null ? undefined : (() => {
    const d = options.cacheDir ?? defaultBuildCacheDir();
    return d === undefined ? undefined : new BuildCache(d);
  })();
  let key: string | undefined;
  if (assemblyscript && cache !== undefined) {
    key = blake3Hex(JSON.stringify({
      sdk: await sdkFingerprint(),
      table: HOST_FUNCTION_NAMES,
      debug: options.debug === true,
      entry,
      manifest: manifestText,
      statics: statics.map((m) => [m.path, blake3Hex(m.data), m.executable === true]),
    }));
    const hit = await cache.get(key, dir);
    if (hit !== undefined) {
      const meta = hit.meta as Omit<BuildResult, "archive" | "archivePath" | "ms">;
      return await finish(hit.archive, {
        manifestText: meta.manifestText,
        ...(meta.wasmHash !== undefined ? { wasmHash: meta.wasmHash } : {}),
        wasmBytes: meta.wasmBytes,
        source: "assemblyscript",
        entryPoints: meta.entryPoints,
        warnings: meta.warnings,
        cached: true,
        compileMs: 0,
      });
    }
  }

  let wasm: Uint8Array;
  let entryPoints: EntryPoint[] = [];
  let warnings: CompileDiagnostic[] = [];
  let inputs: string[] = [];
  let compileMs = 0;
  if (assemblyscript) {
    const out = await compileCapsule(dir, {
      entry,
      debug: options.debug === true,
      handlers: handlerMaps(manifest),
    });
    wasm = out.wasm;
    entryPoints = out.entryPoints;
    warnings = out.warnings;
    inputs = out.inputs;
    compileMs = out.ms;
  } else {
    wasm = await Deno.readFile(prebuilt);
  }

  const info = checkModule(wasm, name);
  const problems = manifestProblems(manifest, {
    handlers: handlerExports(info),
    functions: functionExports(info),
    entryPoints,
    source: assemblyscript ? entry : manifest.wasm.file,
  });
  if (problems.length > 0) {
    throw new BuildError(
      BuildCode.BUILD_MANIFEST_MISMATCH,
      `Capsule "${name}": ${MANIFEST_FILE} and the module disagree: ${problems.length} problem(s)\n` +
        problems.map((p) => `  ${p}`).join("\n"),
      { data: { path: manifestPath, problems } },
    );
  }
  const archivedManifest = applyToolSchemas(manifestText, manifest, entryPoints, manifestPath);
  const wasmHash = `blake3:${blake3Hex(wasm)}`;
  if (manifest.wasm.hash !== undefined && manifest.wasm.hash !== wasmHash) {
    throw new BuildError(
      BuildCode.BUILD_HASH_MISMATCH,
      `${manifestPath}: [wasm] hash pins "${manifest.wasm.hash}" but the module built is "${wasmHash}": update or remove the pin`,
      { data: { expected: manifest.wasm.hash, actual: wasmHash } },
    );
  }
  const archive = await writeArchive([
    { path: MANIFEST_FILE, data: new TextEncoder().encode(archivedManifest) },
    { path: `${name}.wasm`, data: wasm },
    ...statics,
  ]);
  const rest = {
    manifestText: archivedManifest,
    wasmHash,
    wasmBytes: wasm.length,
    source: assemblyscript ? "assemblyscript" as const : "prebuilt" as const,
    entryPoints,
    warnings,
    cached: false,
    compileMs,
  };
  if (key !== undefined && cache !== undefined) {
    const hashed = await BuildCache.hashInputs(dir, inputs);
    if (hashed !== undefined) await cache.put(key, hashed, archive, rest);
  }
  return await finish(archive, rest);
}
