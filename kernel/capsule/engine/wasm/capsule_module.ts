/**
 * Judges and compiles a capsule's wasm once in the kernel: memory and table limits rewritten
 * into the binary, imports checked against the host ABI table, the ABI exports' types
 * checked, then `WebAssembly.compile`. The result is posted to every worker of the capsule.
 *
 * @module
 */
import { EngineCode, EngineError } from "./errors.ts";
import {
  formatFuncType,
  isFuncType,
  limitWasmBinary,
  MAX_MEMORY_PAGES,
  type WasmBinaryInfo,
  type WasmExport,
} from "./wasm_binary.ts";

/** The module name every import must come from. */
export const HOST_MODULE = "astrid";

/** The export the host calls to obtain guest memory for payloads and replies. */
export const ALLOC_EXPORT = "astrid_alloc";

/** The export a run-loop capsule provides. */
export const RUN_EXPORT = "astrid_run";

/** Exports that are never invoked as handlers. */
const RESERVED_EXPORTS = new Set([ALLOC_EXPORT, "memory"]);

/** A module ready to instantiate in workers. */
export interface CapsuleModule {
  /** `blake3:<hex>` of the original bytes (the cache key). */
  hash: string;
  /** The compiled, limit-rewritten module. */
  module: WebAssembly.Module;
  /** What the module declares (after rewriting). */
  info: WasmBinaryInfo;
  /** Names of exports invocable as handlers: functions `(i32, i32) -> i64`. */
  handlers: ReadonlySet<string>;
  /** Pages for an imported `astrid.memory`, when the module imports one. */
  memory?: { initial: number; maximum: number };
}

/** What {@link compileCapsuleModule} enforces. */
export interface CompileCapsuleOptions {
  /** The content address of `wasm` (already computed by the caller). */
  hash: string;
  /** Names in the host ABI table. */
  functions: ReadonlySet<string>;
  /** Memory limit in pages (at most 1024). */
  maxMemoryPages: number;
  /** Table limit in elements. */
  maxTableElements: number;
}

/** Returns the handler exports: functions of type `(i32, i32) -> i64`, not reserved. */
function handlerExports(exports: readonly WasmExport[]): Set<string> {
  return new Set(
    exports.filter((e) =>
      e.kind === "function" && !RESERVED_EXPORTS.has(e.name) &&
      isFuncType(e.type, ["i32", "i32"], ["i64"])
    ).map((e) => e.name),
  );
}

/** Refuses an import outside the table, with the message capsule authors see. */
function checkImports(capsule: string, info: WasmBinaryInfo, functions: ReadonlySet<string>): void {
  const deny = (imp: string, detail: string): never => {
    throw new EngineError(
      EngineCode.WASM_IMPORT_DENIED,
      `Cannot load capsule "${capsule}": ${detail}`,
      {
        data: { capsule, import: imp },
      },
    );
  };
  for (const imp of info.imports) {
    const full = `${imp.module}.${imp.name}`;
    if (imp.module !== HOST_MODULE) {
      deny(full, `import "${full}" is not allowed: capsules import only from "${HOST_MODULE}"`);
    }
    if (imp.kind === "memory") {
      if (imp.name !== "memory") {
        deny(
          full,
          `import "${full}" is not allowed: the only memory a capsule may import is "astrid.memory"`,
        );
      }
      continue;
    }
    if (imp.kind !== "function") {
      deny(
        full,
        `import "${full}" is a ${imp.kind}: capsules import only host functions and "astrid.memory"`,
      );
    }
    if (!functions.has(imp.name)) deny(full, `import "${full}" is not in the host ABI table`);
    if (!isFuncType(imp.type, ["i32", "i32"], ["i64"])) {
      deny(
        full,
        `import "${full}" has type ${formatFuncType(imp.type)}, expected (i32, i32) -> i64`,
      );
    }
  }
}

function checkExports(capsule: string, info: WasmBinaryInfo): void {
  const fail = (detail: string): never => {
    throw new EngineError(EngineCode.WASM_LOAD, `Cannot load capsule "${capsule}": ${detail}`, {
      data: { capsule, reason: detail },
    });
  };
  const alloc = info.exports.find((e) => e.name === ALLOC_EXPORT);
  if (alloc !== undefined && !isFuncType(alloc.type, ["i32"], ["i32"])) {
    fail(`export "${ALLOC_EXPORT}" has type ${formatFuncType(alloc.type)}, expected (i32) -> i32`);
  }
  const run = info.exports.find((e) => e.name === RUN_EXPORT);
  if (run !== undefined && !isFuncType(run.type, ["i32", "i32"], ["i64"])) {
    fail(`export "${RUN_EXPORT}" has type ${formatFuncType(run.type)}, expected (i32, i32) -> i64`);
  }
  if (info.memories.length > 0) {
    const mem = info.exports.find((e) => e.name === "memory");
    if (mem === undefined || mem.kind !== "memory") {
      fail(
        'the module defines a memory but does not export it as "memory": the host reads payloads and replies there',
      );
    }
  }
}

/**
 * Limits, checks and compiles `wasm` for capsule `name`. Throws `WASM_LOAD`,
 * `WASM_IMPORT_DENIED` or `WASM_MEMORY_LIMIT` with a message naming the capsule.
 */
export async function compileCapsuleModule(
  name: string,
  wasm: Uint8Array,
  options: CompileCapsuleOptions,
): Promise<CapsuleModule> {
  const limited = limitWasmBinary(wasm, {
    capsule: name,
    maxMemoryPages: options.maxMemoryPages,
    maxTableElements: options.maxTableElements,
  });
  const info = limited.info;
  checkImports(name, info, options.functions);
  checkExports(name, info);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(limited.bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new EngineError(
      EngineCode.WASM_LOAD,
      `Cannot load capsule "${name}": compile failed: ${reason}`,
      {
        data: { capsule: name, reason },
        cause: err,
      },
    );
  }
  const memImport = info.imports.find((i) => i.kind === "memory")?.limits;
  const memory = memImport === undefined ? undefined : {
    initial: memImport.min,
    maximum: Math.min(memImport.max ?? MAX_MEMORY_PAGES, options.maxMemoryPages),
  };
  return { hash: options.hash, module, info, handlers: handlerExports(info.exports), memory };
}
