/**
 * Puts the input schemas `astrid build` derives from `@tool` argument classes into the
 * manifest it archives (`[[tool]] input_schema`, which `tool.v1.request.describe` answers),
 * or checks them against the ones the author wrote. The source `Capsule.toml` is never changed.
 *
 * @module
 */
import { type CapsuleManifest, type JsonObject, parseManifest } from "../../kernel/capsule/mod.ts";
import type { JsonValue } from "../../kernel/events/mod.ts";
import { BuildCode, BuildError } from "./errors.ts";
import type { EntryPoint } from "./transform.ts";

/** A JSON value with object keys sorted, for comparing. */
function canonical(v: JsonValue | undefined): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  const o = v as JsonObject;
  return `{${
    Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")
  }}`;
}

/** True when `schema` is the manifest's default (`{type = "object", properties = {}}`). */
export function isDefaultSchema(schema: JsonObject): boolean {
  return canonical(schema) === canonical({ type: "object", properties: {} });
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** `value` as a one-line TOML inline value. */
export function tomlInline(value: JsonValue): string {
  if (value === null) throw new RangeError("TOML has no null");
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map(tomlInline).join(", ")}]`;
  const entries = Object.entries(value as JsonObject).filter(([, v]) => v !== null);
  if (entries.length === 0) return "{}";
  return `{ ${
    entries.map(([k, v]) => `${BARE_KEY.test(k) ? k : JSON.stringify(k)} = ${tomlInline(v)}`)
      .join(", ")
  } }`;
}

/** Differences between an author's schema and the derived one (property names, types, required). */
export function schemaDifferences(written: JsonObject, derived: JsonObject): string[] {
  const out: string[] = [];
  const wp = (written.properties ?? {}) as JsonObject;
  const dp = (derived.properties ?? {}) as JsonObject;
  for (const k of Object.keys(dp)) {
    if (!(k in wp)) out.push(`property "${k}" is in the argument class but not in input_schema`);
    else {
      const wt = (wp[k] as JsonObject)?.type;
      const dt = (dp[k] as JsonObject)?.type;
      if (wt !== undefined && dt !== undefined && canonical(wt) !== canonical(dt)) {
        out.push(
          `property "${k}" is ${canonical(dt)} in the class but ${canonical(wt)} in input_schema`,
        );
      }
    }
  }
  for (const k of Object.keys(wp)) {
    if (!(k in dp)) out.push(`property "${k}" is in input_schema but not in the argument class`);
  }
  const wr = new Set((written.required ?? []) as string[]);
  const dr = new Set((derived.required ?? []) as string[]);
  for (const k of dr) {
    if (!wr.has(k)) out.push(`property "${k}" is required by the class but not by input_schema`);
  }
  for (const k of wr) {
    if (!dr.has(k)) {
      out.push(`property "${k}" is required by input_schema but optional in the class`);
    }
  }
  return out;
}

/**
 * The manifest text to archive: each `@tool`'s derived schema inserted where the author wrote
 * none (one `input_schema = { … }` line at the end of its `[[tool]]` table), and checked where the
 * author wrote one. Throws `BUILD_SCHEMA_MISMATCH` on a disagreement.
 */
export function applyToolSchemas(
  manifestText: string,
  manifest: CapsuleManifest,
  entryPoints: readonly EntryPoint[],
  file: string,
): string {
  const inserts = new Map<number, string>(); // tool index → line to insert
  for (const e of entryPoints) {
    if (e.kind !== "tool" || e.inputSchema === undefined) continue;
    const index = manifest.tool.findIndex((t) => t.name === e.name);
    if (index < 0) continue;
    const written = manifest.tool[index].input_schema;
    if (isDefaultSchema(written)) {
      if (!isDefaultSchema(e.inputSchema)) {
        inserts.set(index, `input_schema = ${tomlInline(e.inputSchema)}`);
      }
      continue;
    }
    const diffs = schemaDifferences(written, e.inputSchema);
    if (diffs.length > 0) {
      throw new BuildError(
        BuildCode.BUILD_SCHEMA_MISMATCH,
        `${file}: [[tool]] "${e.name}" input_schema disagrees with the argument class of @tool function "${e.function}" (${e.file}:${e.line}): ${
          diffs.join("; ")
        }; remove input_schema to use the derived one, or make them agree`,
        { data: { tool: e.name, problems: diffs } },
      );
    }
  }
  if (inserts.size === 0) return manifestText;
  const lines = manifestText.split("\n");
  const header = /^\s*\[\[\s*tool\s*\]\]\s*(#.*)?$/;
  const anyHeader = /^\s*\[/;
  let toolIndex = -1;
  let pending: string | undefined;
  const out: string[] = [];
  const flush = () => {
    if (pending === undefined) return;
    let at = out.length; // after the block's last non-blank line
    while (at > 0 && out[at - 1].trim() === "") at--;
    out.splice(at, 0, pending);
    pending = undefined;
  };
  for (const line of lines) {
    if (anyHeader.test(line)) flush();
    out.push(line);
    if (header.test(line)) {
      toolIndex++;
      pending = inserts.get(toolIndex);
    }
  }
  flush();
  const text = out.join("\n");
  // Check the result: the schemas landed where they belong (a [[tool]] written another way,
  // e.g. as an inline array, is not edited).
  const again = parseManifest(text, { file });
  for (const [index, line] of inserts) {
    const entry = entryPoints.find((e) =>
      e.kind === "tool" && e.name === manifest.tool[index].name
    )!;
    if (canonical(again.tool[index]?.input_schema) !== canonical(entry.inputSchema)) {
      throw new BuildError(
        BuildCode.BUILD_SCHEMA_MISMATCH,
        `${file}: cannot insert the input schema of tool "${entry.name}": write its [[tool]] as a table header, or add this line to it: ${line}`,
        { data: { tool: entry.name, problems: ["not a [[tool]] header"] } },
      );
    }
  }
  return text;
}
