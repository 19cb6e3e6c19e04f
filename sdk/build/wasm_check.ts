/**
 * What `astrid build` checks in a module before it packs it: imports only from `astrid`, only
 * functions of the host ABI table, each of type `(i32, i32) -> i64`, or `astrid.memory`; and
 * which handler exports it has.
 *
 * @module
 */
import {
  formatFuncType,
  parseWasmBinary,
  type WasmBinaryInfo,
} from "../../kernel/capsule/engine/wasm/mod.ts";
import { HOST_FUNCTION_NAMES } from "../../host_abi/mod.ts";
import { BuildCode, BuildError } from "./errors.ts";

/** Hints for imports AssemblyScript code pulls in by accident. */
const IMPORT_HINTS: Record<string, string> = {
  "env.abort": "build with astrid build, which maps abort to the SDK",
  "env.seed": "build with astrid build, which maps Math.random's seed to astrid.random_bytes",
  "env.trace": "build with astrid build, which maps trace to astrid.log",
  "env.Date.now": 'use time.nowMs() from "@astrid/sdk" instead of Date.now()',
  "env.console.log": 'use log.info() from "@astrid/sdk" instead of console.log()',
  "env.console.info": 'use log.info() from "@astrid/sdk" instead of console.info()',
  "env.console.warn": 'use log.warn() from "@astrid/sdk" instead of console.warn()',
  "env.console.error": 'use log.error() from "@astrid/sdk" instead of console.error()',
  "env.console.debug": 'use log.debug() from "@astrid/sdk" instead of console.debug()',
  "env.performance.now": 'use time.nowMs() from "@astrid/sdk" instead of performance.now()',
};

/** One refused import. */
export interface ImportProblem {
  /** The import's module. */
  module: string;
  /** The import's name. */
  name: string;
  /** Why it is refused, with a fix. */
  problem: string;
}

function isHandlerType(t: { params: string[]; results: string[] } | undefined): boolean {
  return t !== undefined && t.params.length === 2 && t.params[0] === "i32" &&
    t.params[1] === "i32" && t.results.length === 1 && t.results[0] === "i64";
}

/** The imports of `info` the host would refuse, each with the reason and a fix. */
export function importProblems(info: WasmBinaryInfo): ImportProblem[] {
  const table = new Set(HOST_FUNCTION_NAMES);
  const out: ImportProblem[] = [];
  for (const imp of info.imports) {
    const full = `${imp.module}.${imp.name}`;
    if (imp.module !== "astrid") {
      const hint = IMPORT_HINTS[full];
      out.push({
        module: imp.module,
        name: imp.name,
        problem: `import "${full}" is not allowed: capsules import only from "astrid"${
          hint ? `; ${hint}` : ""
        }`,
      });
    } else if (imp.kind === "memory" && imp.name === "memory") {
      continue;
    } else if (imp.kind !== "function") {
      out.push({
        module: imp.module,
        name: imp.name,
        problem:
          `import "${full}" is a ${imp.kind}; only functions and astrid.memory can be imported`,
      });
    } else if (!table.has(imp.name)) {
      out.push({
        module: imp.module,
        name: imp.name,
        problem: `import "${full}" is not in the host ABI table (docs/host_abi.md)`,
      });
    } else if (!isHandlerType(imp.type)) {
      out.push({
        module: imp.module,
        name: imp.name,
        problem: `import "${full}" has type ${
          formatFuncType(imp.type)
        }, expected (i32, i32) -> i64`,
      });
    }
  }
  return out;
}

/** The module's exports of the handler type `(i32, i32) -> i64` (except `astrid_alloc`). */
export function handlerExports(info: WasmBinaryInfo): Set<string> {
  return new Set(
    info.exports
      .filter((e) => e.kind === "function" && e.name !== "astrid_alloc" && isHandlerType(e.type))
      .map((e) => e.name),
  );
}

/** The names of all function exports. */
export function functionExports(info: WasmBinaryInfo): Set<string> {
  return new Set(info.exports.filter((e) => e.kind === "function").map((e) => e.name));
}

/**
 * Parses `wasm` and throws `BUILD_IMPORT_DENIED` listing every import the host would refuse;
 * returns what it learned.
 */
export function checkModule(wasm: Uint8Array, capsule: string): WasmBinaryInfo {
  const info = parseWasmBinary(wasm, { capsule });
  const problems = importProblems(info);
  if (problems.length > 0) {
    throw new BuildError(
      BuildCode.BUILD_IMPORT_DENIED,
      `Capsule "${capsule}" imports what the host refuses: ${problems.length} import(s)\n` +
        problems.map((p) => `  ${p.problem}`).join("\n"),
      { data: { imports: problems } },
    );
  }
  return info;
}
