/**
 * The entry-point transform: turns decorated AssemblyScript functions into the capsule's ABI
 * exports. It runs inside the AssemblyScript compiler (after json-as's transform), in Deno.
 *
 * | decorator                           | export (default)                      | the function                          |
 * | ----------------------------------- | ------------------------------------- | ------------------------------------- |
 * | `@tool` / `@tool("name")`           | the manifest's handler, else `tool_<name>` | `(args: T[, inv: Invocation]) => R` |
 * | `@command` / `@command("name")`     | the manifest's handler, else `command_<name>` | `(payload: T[, inv]) => R`     |
 * | `@interceptor("topic", priority)`   | the `[subscribe]` handler, else `intercept_<function>` | `(payload: T[, inv]) => Intercept \| void` |
 * | `@install` / `@upgrade`             | `astrid_install` / `astrid_upgrade`   | `([payload: T][, inv]) => R`          |
 * | `@run`                              | `astrid_run`                          | `() => void`                          |
 *
 * `T` is a `@json` class (or `string` for the raw JSON text); `R` is a `@json` class, a
 * `string` (sent as is), `void`, `Result<X>` or `Outcome` (an error becomes the reply's
 * status and message). A tool's input schema is derived from `T` ({@link classSchema}).
 *
 * The generated code is appended to the function's own file, so it sees unexported names;
 * exports of a non-entry file are re-exported from the entry file.
 *
 * @module
 */
import type { JsonObject } from "../../kernel/capsule/mod.ts";
import { TOOL_NAME_RE } from "../../kernel/capsule/mod.ts";
import {
  type AsDecorator,
  type AsFunction,
  type AsIdentifier,
  type AsLiteral,
  type AsNode,
  type AsParser,
  type AsSource,
  docCommentAt,
  lineColumn,
  LiteralKind,
  NodeKind,
  SourceKind,
  textOf,
  typeNameOf,
  USER_DEFINED_DIAGNOSTIC,
} from "./_as_ast.ts";
import { classSchema, typeScope } from "./tool_schema.ts";

/** The kinds of entry point. */
export type EntryKind = "tool" | "command" | "interceptor" | "install" | "upgrade" | "run";

/** The decorators the transform understands, by kind. */
export const ENTRY_DECORATORS: readonly EntryKind[] = [
  "tool",
  "command",
  "interceptor",
  "install",
  "upgrade",
  "run",
];

/** One decorated function and the export generated for it. */
export interface EntryPoint {
  /** What it is. */
  readonly kind: EntryKind;
  /** The tool's or command's name, the interceptor's topic, or the kind for lifecycle hooks. */
  readonly name: string;
  /** The wasm export generated. */
  readonly export: string;
  /** The decorated function. */
  readonly function: string;
  /** Where it is: the file relative to the capsule, 1-based line and column. */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** Interceptors: the topic pattern. */
  readonly topic?: string;
  /** Interceptors: the priority (default 100). */
  readonly priority?: number;
  /** Tools: the JSON Schema derived from the argument class. */
  readonly inputSchema?: JsonObject;
  /** The function's doc comment. */
  readonly description?: string;
}

/** What the transform knows of the manifest: the export each declared entry expects. */
export interface EntryPointOptions {
  /** Internal paths of the user's entry files (e.g. `assembly/index`). */
  readonly entryFiles: readonly string[];
  /** `[[tool]]` name → handler. */
  readonly toolHandlers?: ReadonlyMap<string, string>;
  /** `[[command]]` name → handler. */
  readonly commandHandlers?: ReadonlyMap<string, string>;
  /** `[subscribe]` topic → handler. */
  readonly interceptorHandlers?: ReadonlyMap<string, string>;
}

/** Where the transform reports what it generated. */
export interface EntryPointSink {
  /** Every entry point generated, in source order. */
  entryPoints: EntryPoint[];
  /** The generated code by the path it was parsed as (for locating diagnostics). */
  generated?: Map<string, string>;
}

/** The module the generated code imports its glue from. */
export const ENTRY_GLUE_MODULE = "@astrid/sdk/internal/entry";

const DEFAULT_PRIORITY = 100;
const SINGLETONS: Record<string, string> = {
  install: "astrid_install",
  upgrade: "astrid_upgrade",
  run: "astrid_run",
};

interface Found {
  kind: EntryKind;
  decl: AsFunction;
  decorator: AsDecorator;
  source: AsSource;
}

/** An AssemblyScript transform instance, as `asc` drives it. */
export interface AscTransform {
  /** Called once every source is parsed. */
  afterParse(parser: unknown): void;
}

/**
 * A transform class for `asc`'s `transforms` option (instantiated by the compiler) that
 * generates the exports of decorated functions and reports them to `sink`.
 */
export function entryPointTransform(
  options: EntryPointOptions,
  sink: EntryPointSink,
): new () => AscTransform {
  return class EntryPointTransform implements AscTransform {
    afterParse(parser: unknown): void {
      new Generator(parser as AsParser, options, sink).run();
    }
  };
}

class Generator {
  readonly #parser: AsParser;
  readonly #options: EntryPointOptions;
  readonly #sink: EntryPointSink;
  readonly #exports = new Map<string, Found>();

  constructor(parser: AsParser, options: EntryPointOptions, sink: EntryPointSink) {
    this.#parser = parser;
    this.#options = options;
    this.#sink = sink;
  }

  run(): void {
    const sources = this.#parser.sources;
    // json-as 1.6 demotes any source named "assembly/index" to a library file, which drops its
    // exports; a capsule's entry is exactly that file, so give it its entry status back.
    for (const s of sources) {
      if (this.#options.entryFiles.includes(s.internalPath)) s.sourceKind = SourceKind.UserEntry;
    }
    const user = sources.filter((s) =>
      (s.sourceKind === SourceKind.User || s.sourceKind === SourceKind.UserEntry) &&
      !s.internalPath.startsWith("~lib/")
    );
    const entry = user.find((s) => this.#options.entryFiles[0] === s.internalPath);
    const scope = typeScope(sources.filter((s) => !s.internalPath.startsWith("~lib/rt")));
    for (const source of user) {
      const found = this.#collect(source);
      if (found.length === 0) continue;
      const code: string[] = [`import * as __astrid from "${ENTRY_GLUE_MODULE}";`];
      const reexports: string[] = [];
      for (const f of found) {
        const generated = this.#generate(f, scope);
        if (generated === undefined) continue;
        code.push(generated);
        if (entry !== undefined && source !== entry) {
          reexports.push(this.#sink.entryPoints.at(-1)!.export);
        }
      }
      this.#append(source, code.join("\n"));
      if (entry !== undefined && reexports.length > 0) {
        this.#append(
          entry,
          `export { ${reexports.join(", ")} } from "${relativeImport(entry, source)}";`,
        );
      }
    }
  }

  /**
   * Parses `code` as a new sibling file of `target` (so the compiler knows its source and loads
   * what it imports) and moves its statements into `target` (so it sees `target`'s names).
   */
  #append(target: AsSource, code: string): void {
    const base = target.normalizedPath.replace(/\.ts$/, "");
    let path = `${base}.astrid.ts`;
    for (let n = 2; this.#sink.generated?.has(path); n++) path = `${base}.astrid${n}.ts`;
    this.#sink.generated?.set(path, code);
    const before = this.#parser.sources.length;
    this.#parser.parseFile(code, path, false);
    const parsed = this.#parser.sources[before];
    if (parsed === undefined || parsed.normalizedPath !== path) {
      throw new Error(`Astrid's entry-point transform could not add "${path}" (a bug)`);
    }
    target.statements.push(...parsed.statements);
    parsed.statements = [];
  }

  #error(node: AsNode, message: string): void {
    this.#parser.error(USER_DEFINED_DIAGNOSTIC, node.range, message);
  }

  /** Finds decorated functions (top level and in namespaces, which are refused). */
  #collect(source: AsSource): Found[] {
    const found: Found[] = [];
    const visit = (nodes: readonly AsNode[], inNamespace: boolean) => {
      for (const node of nodes) {
        if (node.kind === NodeKind.NamespaceDeclaration) {
          visit((node as unknown as { members: AsNode[] }).members, true);
          continue;
        }
        if (node.kind !== NodeKind.FunctionDeclaration) continue;
        const decl = node as AsFunction;
        const ours = (decl.decorators ?? []).filter((d) => entryKindOf(d) !== undefined);
        if (ours.length === 0) continue;
        if (ours.length > 1) {
          this.#error(
            ours[1],
            `Function "${decl.name.text}" has ${ours.length} entry-point decorators; keep one`,
          );
          continue;
        }
        decl.decorators = (decl.decorators ?? []).filter((d) => !ours.includes(d));
        if (decl.decorators.length === 0) decl.decorators = null;
        if (inNamespace) {
          this.#error(
            ours[0],
            `@${
              entryKindOf(ours[0])
            } function "${decl.name.text}" is inside a namespace; entry points must be top-level functions`,
          );
          continue;
        }
        found.push({ kind: entryKindOf(ours[0])!, decl, decorator: ours[0], source });
      }
    };
    visit(source.statements, false);
    return found;
  }

  /** Generates the export for `f`; returns its code, or undefined after reporting an error. */
  #generate(f: Found, scope: ReturnType<typeof typeScope>): string | undefined {
    const { kind, decl, decorator } = f;
    const fn = decl.name.text;
    if (decl.typeParameters && decl.typeParameters.length > 0) {
      this.#error(decl, `@${kind} function "${fn}" is generic; entry points take concrete types`);
      return undefined;
    }
    const args = (decorator.args ?? []).map((a) => literal(a));
    if (args.some((a) => a === undefined)) {
      this.#error(decorator, `@${kind} takes literal arguments: ${usage(kind)}`);
      return undefined;
    }
    let name: string = kind;
    let topic: string | undefined;
    let priority: number | undefined;
    let exportName: string;
    if (kind === "tool" || kind === "command") {
      if (args.length > 1 || (args.length === 1 && typeof args[0] !== "string")) {
        this.#error(decorator, `Malformed @${kind}: ${usage(kind)}`);
        return undefined;
      }
      name = args.length === 1 ? String(args[0]) : fn;
      if (kind === "tool" && !TOOL_NAME_RE.test(name)) {
        this.#error(
          decorator,
          `Invalid tool name "${name}": use 1 to 64 characters of a-z, A-Z, 0-9, "_" and "-"`,
        );
        return undefined;
      }
      const handlers = kind === "tool" ? this.#options.toolHandlers : this.#options.commandHandlers;
      exportName = handlers?.get(name) ?? `${kind}_${name.replaceAll("-", "_")}`;
    } else if (kind === "interceptor") {
      if (
        args.length < 1 || args.length > 2 || typeof args[0] !== "string" ||
        (args.length === 2 &&
          (typeof args[1] !== "number" || !Number.isInteger(args[1]) || (args[1] as number) < 0))
      ) {
        this.#error(decorator, `Malformed @interceptor: ${usage(kind)}`);
        return undefined;
      }
      topic = String(args[0]);
      name = topic;
      priority = args.length === 2 ? Number(args[1]) : DEFAULT_PRIORITY;
      exportName = this.#options.interceptorHandlers?.get(topic) ?? `intercept_${fn}`;
    } else {
      if (args.length > 0) {
        this.#error(decorator, `@${kind} takes no arguments`);
        return undefined;
      }
      exportName = SINGLETONS[kind];
    }
    if (exportName === fn) {
      this.#error(
        decl,
        `@${kind} function "${fn}" has the name of its export "${exportName}"; rename the function (e.g. "${
          camel(fn)
        }")`,
      );
      return undefined;
    }
    const prior = this.#exports.get(exportName);
    if (prior !== undefined) {
      this.#error(
        decl,
        `@${kind} function "${fn}" generates export "${exportName}", already generated for "${prior.decl.name.text}"`,
      );
      return undefined;
    }
    this.#exports.set(exportName, f);

    const params = decl.signature.parameters;
    const maxParams = kind === "run" ? 0 : 2;
    if (params.length > maxParams) {
      this.#error(
        decl,
        `@${kind} function "${fn}" takes ${params.length} parameters; ${usage(kind)}`,
      );
      return undefined;
    }
    const inputType = params.length >= 1 ? textOf(params[0].type) : undefined;
    if (params.length === 2 && typeNameOf(params[1].type).split(".").pop() !== "Invocation") {
      this.#error(
        params[1],
        `The second parameter of @${kind} function "${fn}" must be an Invocation (from "@astrid/sdk")`,
      );
      return undefined;
    }
    const callArgs: string[] = [];
    const field = kind === "tool" || kind === "command" ? "argumentsJson" : "payloadJson";
    const what = kind === "tool" || kind === "command" ? "arguments" : "payload";
    let guard = "";
    if (inputType !== undefined) {
      if (params.length === 1 && typeNameOf(params[0].type).split(".").pop() === "Invocation") {
        callArgs.push("inv");
      } else {
        guard = `  if (!__astrid.inputOk<${inputType}>(inv.${field})) ` +
          `return __astrid.replyBadInput(inv.${field}, "${what}");\n`;
        callArgs.push(`__astrid.parseInput<${inputType}>(inv.${field})`);
      }
    }
    if (params.length === 2) callArgs.push("inv");
    const call = `${fn}(${callArgs.join(", ")})`;
    const ret = decl.signature.returnType;
    const retName = ret.kind === NodeKind.NamedType ? typeNameOf(ret) : "";
    let body: string;
    if (retName === "void" || retName === "") {
      body = kind === "run" ? `${call};\n  return 0;` : `${call};\n  return __astrid.replyEmpty();`;
    } else if (kind === "run") {
      this.#error(ret, `@run function "${fn}" must return void`);
      return undefined;
    } else if (kind === "interceptor") {
      if (retName.split(".").pop() !== "Intercept") {
        this.#error(ret, `@interceptor function "${fn}" must return Intercept or void`);
        return undefined;
      }
      body = `return __astrid.replyIntercept(${call});`;
    } else if (retName.split(".").pop() === "Result" && (ret.typeArguments?.length ?? 0) === 1) {
      body = `return __astrid.replyResult<${textOf(ret.typeArguments![0])}>(${call});`;
    } else if (retName.split(".").pop() === "Outcome") {
      body = `return __astrid.replyOutcome(${call});`;
    } else {
      body = `return __astrid.replyValue<${textOf(ret)}>(${call});`;
    }

    let inputSchema: JsonObject | undefined;
    if (kind === "tool") {
      const first = params[0];
      if (first === undefined || textOf(first.type) === "string") {
        inputSchema = { type: "object", properties: {} };
      } else {
        const cls = first.type.kind === NodeKind.NamedType
          ? scope.classNamed(typeNameOf(first.type), f.source)
          : undefined;
        if (cls === undefined) {
          this.#error(
            first.type,
            `The argument of @tool function "${fn}" must be a @json class (or string for raw JSON); "${
              textOf(first.type)
            }" is not a class found in the capsule`,
          );
          return undefined;
        }
        inputSchema = classSchema(cls, scope);
      }
    }
    const where = lineColumn(f.source, decl.name.range.start);
    const description = docCommentAt(f.source.text, decl.range.start);
    this.#sink.entryPoints.push({
      kind,
      name,
      export: exportName,
      function: fn,
      file: f.source.normalizedPath,
      line: where.line,
      column: where.column,
      ...(topic !== undefined ? { topic, priority } : {}),
      ...(inputSchema !== undefined ? { inputSchema } : {}),
      ...(description !== undefined ? { description } : {}),
    });
    return `export function ${exportName}(ptr: usize, len: usize): u64 {\n` +
      `  const inv = __astrid.begin(ptr, len);\n${guard}  ${body}\n}`;
  }
}

function entryKindOf(d: AsDecorator): EntryKind | undefined {
  if (d.name.kind !== NodeKind.Identifier) return undefined;
  const name = (d.name as AsIdentifier).text;
  return (ENTRY_DECORATORS as readonly string[]).includes(name) ? name as EntryKind : undefined;
}

function literal(node: AsNode): string | number | undefined {
  if (node.kind === NodeKind.Literal) {
    const lit = node as AsLiteral;
    if (lit.literalKind === LiteralKind.String) return String(lit.value);
    if (lit.literalKind === LiteralKind.Integer || lit.literalKind === LiteralKind.Float) {
      return Number(textOf(node).replaceAll("_", ""));
    }
  }
  return undefined;
}

function usage(kind: EntryKind): string {
  switch (kind) {
    case "tool":
      return '@tool or @tool("name") on a function (args: T[, inv: Invocation])';
    case "command":
      return '@command or @command("name") on a function (payload: T[, inv: Invocation])';
    case "interceptor":
      return '@interceptor("topic.pattern") or @interceptor("topic.pattern", priority) on a function (payload: T[, inv: Invocation])';
    case "run":
      return "@run on a function with no parameters";
    default:
      return `@${kind} on a function ([payload: T][, inv: Invocation])`;
  }
}

function camel(name: string): string {
  const c = name.replace(/_([a-z0-9])/g, (_, x: string) => x.toUpperCase());
  return c === name ? `${name}Impl` : c;
}

/** A relative import path from `from`'s file to `to`'s. */
function relativeImport(from: AsSource, to: AsSource): string {
  const a = from.normalizedPath.split("/");
  a.pop();
  const b = to.normalizedPath.replace(/\.ts$/, "").split("/");
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  const up = a.length - i;
  const rest = b.slice(i).join("/");
  return up === 0 ? `./${rest}` : `${"../".repeat(up)}${rest}`;
}
