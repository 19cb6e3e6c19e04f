/**
 * Folder-private: the issue collector of the manifest parser. It reads typed values out of a
 * TOML table, and records a problem (file, line, field, fix) instead of throwing, so that
 * every problem of a manifest is reported at once.
 *
 * @module
 */
import { TomlDate } from "smol-toml";
import type { JsonValue } from "../events/mod.ts";
import type { ManifestIssue } from "./errors.ts";
import { MANIFEST_SCHEMA, RENAMED_KEYS } from "./manifest_schema.ts";
import { closest } from "./_suggest.ts";
import { formatPath, type KeyPath, TomlLocator } from "./_toml_locator.ts";
import type { Problem } from "./_manifest_values.ts";

/** A TOML table as smol-toml returns it. */
export type Table = Record<string, unknown>;
const q = JSON.stringify;

/** Collects issues and reads typed values, recording a problem instead of throwing. */
export class Context {
  readonly issues: ManifestIssue[] = [];
  readonly file: string;
  readonly #locator: TomlLocator;
  readonly #seen = new Set<string>();

  constructor(file: string, locator: TomlLocator) {
    this.file = file;
    this.#locator = locator;
  }

  fail(path: KeyPath, problem: string, fix?: string): void {
    const field = formatPath(path) || "(top level)";
    const id = `${field}\n${problem}`;
    if (this.#seen.has(id)) return;
    this.#seen.add(id);
    const loc = this.#locator.find(path);
    this.issues.push({
      file: this.file,
      line: loc?.line ?? 1,
      ...(loc ? { column: loc.column } : {}),
      field,
      problem,
      ...(fix ? { fix } : {}),
    });
  }

  problem(path: KeyPath, p: Problem | undefined): boolean {
    if (p) this.fail(path, p.problem, p.fix);
    return p !== undefined;
  }

  /** Reports keys of `obj` not in the schema entry `schemaKey`. */
  known(obj: Table, path: KeyPath, schemaKey: string): void {
    const fields = MANIFEST_SCHEMA[schemaKey];
    for (const key of Object.keys(obj)) {
      if (fields.includes(key)) continue;
      const id = `${schemaKey}.${key}`;
      const renamed = Object.hasOwn(RENAMED_KEYS, id) ? RENAMED_KEYS[id] : undefined;
      const near = closest(key, fields);
      const where = schemaKey === "" ? "at the top level" : `in ${tableName(schemaKey)}`;
      const fix = renamed ??
        (near ? `did you mean ${q(near)}?` : `remove it; known keys: ${fields.join(", ")}`);
      this.fail([...path, key], `unknown key ${q(key)} ${where}`, fix);
    }
  }

  table(value: unknown, path: KeyPath, what: string): Table | undefined {
    if (isTable(value)) return value;
    this.fail(path, `expected ${what}, got ${describe(value)}`);
    return undefined;
  }

  string(
    obj: Table,
    path: KeyPath,
    key: string,
    opts: { required?: string; nonEmpty?: boolean; max?: number } = {},
  ): string | undefined {
    const value = obj[key];
    const at = [...path, key];
    if (value === undefined) {
      if (opts.required !== undefined) this.fail(at, `missing ${key}`, opts.required);
      return undefined;
    }
    if (typeof value !== "string") {
      this.fail(at, `expected a string, got ${describe(value)}`);
      return undefined;
    }
    if (opts.nonEmpty && value.trim() === "") {
      this.fail(at, `${key} is empty`, opts.required ?? `write a value or remove ${key}`);
      return undefined;
    }
    const max = opts.max ?? 4096;
    if (value.length > max) {
      this.fail(at, `${key} is ${value.length} characters, the limit is ${max}`);
      return undefined;
    }
    return value;
  }

  bool(obj: Table, path: KeyPath, key: string): boolean {
    const value = obj[key];
    if (value === undefined) return false;
    if (typeof value !== "boolean") {
      this.fail([...path, key], `expected true or false, got ${describe(value)}`);
      return false;
    }
    return value;
  }

  strings(
    obj: Table,
    path: KeyPath,
    key: string,
    check?: (s: string) => Problem | undefined,
  ): string[] {
    const value = obj[key];
    const at = [...path, key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      const fix = typeof value === "string" ? `write ${key} = [${q(value)}]` : undefined;
      this.fail(at, `expected a list of strings, got ${describe(value)}`, fix);
      return [];
    }
    const out: string[] = [];
    value.forEach((item, i) => {
      if (typeof item !== "string") {
        this.fail([...at, i], `expected a string, got ${describe(item)}`);
      } else if (!check || !this.problem([...at, i], check(item))) {
        if (out.includes(item)) this.fail([...at, i], `${q(item)} is listed twice`, "remove one");
        else out.push(item);
      }
    });
    return out;
  }

  /** Converts a TOML value to JSON (dates become ISO strings); `undefined` on a bad number. */
  json(value: unknown, path: KeyPath): JsonValue | undefined {
    if (value instanceof TomlDate) return value.toISOString();
    if (typeof value === "number") {
      if (Number.isFinite(value)) return value;
      this.fail(path, `${value} is not a JSON number`, "use a finite number");
      return undefined;
    }
    if (typeof value === "string" || typeof value === "boolean") return value;
    if (Array.isArray(value)) {
      const out: JsonValue[] = [];
      for (let i = 0; i < value.length; i++) {
        const item = this.json(value[i], [...path, i]);
        if (item === undefined) return undefined;
        out.push(item);
      }
      return out;
    }
    if (isTable(value)) {
      const out: Record<string, JsonValue> = {};
      for (const [k, v] of Object.entries(value)) {
        const item = this.json(v, [...path, k]);
        if (item === undefined) return undefined;
        out[k] = item;
      }
      return out;
    }
    this.fail(path, `cannot represent ${describe(value)} as JSON`);
    return undefined;
  }
}

/** True for a TOML table (not an array, not a date). */
export function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof TomlDate);
}

/** Describes a value for a message: `"text"`, `the integer 5`, `a list`, `a table`. */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value instanceof TomlDate) return `the date ${value.toISOString()}`;
  if (Array.isArray(value)) return "a list";
  if (isTable(value)) return "a table";
  if (typeof value === "string") return q(value.length > 60 ? value.slice(0, 57) + "..." : value);
  if (typeof value === "number") {
    return Number.isInteger(value) ? `the integer ${value}` : `the number ${value}`;
  }
  if (typeof value === "boolean") return `${value}`;
  return typeof value;
}

/** How a schema key reads in a message: `[package]`, `[[tool]]`, `a [env] entry`. */
export function tableName(schemaKey: string): string {
  if (schemaKey.endsWith(".*")) return `a [${schemaKey.slice(0, -2)}] entry`;
  const arrays = ["tool", "command", "skill", "mcp_server", "uplink", "cron"];
  return arrays.includes(schemaKey) ? `[[${schemaKey}]]` : `[${schemaKey}]`;
}
