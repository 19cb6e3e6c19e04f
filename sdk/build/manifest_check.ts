/**
 * Checks a capsule's `Capsule.toml` against what its module implements: every declared tool,
 * command and `[subscribe]` handler is an export of the handler type, and every decorated
 * entry point (or `tool_*` export) is declared. Each problem names both sides and a fix.
 *
 * @module
 */
import type { CapsuleManifest } from "../../kernel/capsule/mod.ts";
import type { EntryPoint } from "./transform.ts";

/** What the module offers. */
export interface ModuleFacts {
  /** Exports of type `(i32, i32) -> i64`. */
  handlers: ReadonlySet<string>;
  /** Every function export (to tell a wrong type from a missing export). */
  functions: ReadonlySet<string>;
  /** Entry points the compiler generated (empty for a prebuilt module). */
  entryPoints: readonly EntryPoint[];
  /** The entry file, for messages (e.g. `assembly/index.ts`), or the module file. */
  source: string;
}

function at(e: EntryPoint): string {
  return `${e.file}:${e.line}:${e.column}`;
}

function missing(
  what: string,
  handler: string,
  facts: ModuleFacts,
  fix: string,
): string {
  if (facts.functions.has(handler)) {
    return `Capsule.toml: ${what} names handler "${handler}", which ${facts.source} exports with the wrong type; handlers are (i32, i32) -> i64`;
  }
  return `Capsule.toml: ${what} names handler "${handler}", which ${facts.source} does not export: ${fix}`;
}

/** Every disagreement between `manifest` and the module (empty when they agree). */
export function manifestProblems(manifest: CapsuleManifest, facts: ModuleFacts): string[] {
  const problems: string[] = [];
  const entries = facts.entryPoints;
  const byExport = new Map(entries.map((e) => [e.export, e]));

  // Tools: declared ↔ implemented.
  const declaredTools = new Set(manifest.tool.map((t) => t.name));
  for (const t of manifest.tool) {
    if (facts.handlers.has(t.handler)) continue;
    problems.push(missing(
      `[[tool]] "${t.name}"`,
      t.handler,
      facts,
      `add \`@tool${
        t.handler === `tool_${t.name.replaceAll("-", "_")}` ? "" : `("${t.name}")`
      } function ${camel(t.name)}(args: …)\` to ${facts.source}, or remove the [[tool]]`,
    ));
  }
  for (const e of entries.filter((e) => e.kind === "tool")) {
    if (declaredTools.has(e.name)) continue;
    problems.push(
      `${
        at(e)
      }: @tool function "${e.function}" implements tool "${e.name}", but Capsule.toml declares no [[tool]] named "${e.name}": add [[tool]] name = "${e.name}" with a description, or remove the @tool`,
    );
  }
  const toolHandlers = new Set(manifest.tool.map((t) => t.handler));
  for (const name of facts.handlers) {
    if (!name.startsWith("tool_") || toolHandlers.has(name) || byExport.has(name)) continue;
    problems.push(
      `${facts.source} exports "${name}", a tool handler by its name, but Capsule.toml declares no [[tool]] with handler "${name}": add [[tool]] name = "${
        name.slice(5)
      }", or rename the export`,
    );
  }

  // Commands.
  const declaredCommands = new Set(manifest.command.map((c) => c.name));
  for (const c of manifest.command) {
    if (c.handler === undefined || facts.handlers.has(c.handler)) continue;
    problems.push(missing(
      `[[command]] "${c.name}"`,
      c.handler,
      facts,
      `add \`@command("${c.name}") function …\` to ${facts.source}, or remove the handler`,
    ));
  }
  for (const e of entries.filter((e) => e.kind === "command")) {
    const declared = manifest.command.find((c) => c.name === e.name);
    if (!declaredCommands.has(e.name) || declared?.handler === undefined) {
      problems.push(
        `${
          at(e)
        }: @command function "${e.function}" implements command "${e.name}", but Capsule.toml declares no [[command]] named "${e.name}" with a handler: add [[command]] name = "${e.name}", description = "…", handler = "${e.export}"`,
      );
    }
  }

  // Interceptors.
  for (const s of manifest.subscribe) {
    if (s.handler === undefined || facts.handlers.has(s.handler)) continue;
    problems.push(missing(
      `[subscribe] "${s.topic}"`,
      s.handler,
      facts,
      `add \`@interceptor("${s.topic}"${
        s.priority !== undefined && s.priority !== 100 ? `, ${s.priority}` : ""
      }) function …\` to ${facts.source}, or remove the handler`,
    ));
  }
  for (const e of entries.filter((e) => e.kind === "interceptor")) {
    const entry = manifest.subscribe.find((s) => s.topic === e.topic);
    if (entry === undefined || entry.handler === undefined) {
      problems.push(
        `${
          at(e)
        }: @interceptor function "${e.function}" binds "${e.topic}", but Capsule.toml has no [subscribe] entry for it with a handler: add [subscribe] "${e.topic}" = { wit = "opaque", handler = "${e.export}", priority = ${e.priority} }`,
      );
    } else if (entry.handler !== e.export) {
      problems.push(
        `${
          at(e)
        }: @interceptor function "${e.function}" generates export "${e.export}", but [subscribe] "${e.topic}" names handler "${entry.handler}"`,
      );
    } else if ((entry.priority ?? 100) !== e.priority) {
      problems.push(
        `${
          at(e)
        }: @interceptor("${e.topic}", ${e.priority}) disagrees with Capsule.toml's priority = ${
          entry.priority ?? 100
        } for "${e.topic}": make them equal`,
      );
    }
  }
  return problems;
}

function camel(name: string): string {
  return name.replace(/[-_]([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}
