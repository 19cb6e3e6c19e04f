/**
 * Folder-private: the issue collector of the `Distro.toml` parser. Like the capsule
 * manifest's, it reads typed values and records a located problem (file, line, field, fix)
 * instead of throwing, so every problem is reported at once.
 *
 * @module
 */
import {
  closest,
  describe,
  formatPath,
  isTable,
  type KeyPath,
  type Table,
  type TomlLocator,
} from "../capsule/internal.ts";
import type { DistroIssue } from "./errors.ts";

const q = JSON.stringify;

/** Keys written in kebab-case by the reference implementation, and ours. */
const KEBAB: Readonly<Record<string, string>> = {
  "schema-version": "schema_version",
  "source-root": "source_root",
  "astrid-version": "astrid_version",
  "default-group": "default_group",
  "default-expires": "default_expires",
  "max-principals": "max_principals",
  "primary-color": "primary_color",
  "accent-color": "accent_color",
  "display-name": "display_name",
};

/** Collects issues and reads typed values. */
export class DistroContext {
  /** Problems found so far. */
  readonly issues: DistroIssue[] = [];
  /** The file named in every issue. */
  readonly file: string;
  readonly #locator: TomlLocator;

  /** A collector for `file`, locating keys with `locator`. */
  constructor(file: string, locator: TomlLocator) {
    this.file = file;
    this.#locator = locator;
  }

  /** Records a problem at `path`. */
  fail(path: KeyPath, problem: string, fix?: string): void {
    const loc = this.#locator.find(path);
    this.issues.push({
      file: this.file,
      line: loc?.line ?? 1,
      ...(loc ? { column: loc.column } : {}),
      field: formatPath(path) || "(top level)",
      problem,
      ...(fix ? { fix } : {}),
    });
  }

  /** Reports keys of `obj` that are not in `fields`; `where` names the table in messages. */
  known(obj: Table, path: KeyPath, fields: readonly string[], where: string): void {
    for (const key of Object.keys(obj)) {
      if (fields.includes(key)) continue;
      const renamed = KEBAB[key];
      const near = renamed && fields.includes(renamed) ? renamed : closest(key, fields);
      this.fail(
        [...path, key],
        `unknown key ${q(key)} ${where}`,
        near ? `did you mean ${q(near)}?` : `remove it; known keys: ${fields.join(", ")}`,
      );
    }
  }

  /** `value` as a table, or a problem. */
  table(value: unknown, path: KeyPath, what: string): Table | undefined {
    if (isTable(value)) return value;
    this.fail(path, `expected ${what}, got ${describe(value)}`);
    return undefined;
  }

  /** A string field; `required` is the fix shown when it is missing. */
  string(
    obj: Table,
    path: KeyPath,
    key: string,
    opts: { required?: string; max?: number } = {},
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
    if (opts.required !== undefined && value.trim() === "") {
      this.fail(at, `${key} is empty`, opts.required);
      return undefined;
    }
    const max = opts.max ?? 4096;
    if (value.length > max) {
      this.fail(at, `${key} is ${value.length} characters, the limit is ${max}`);
      return undefined;
    }
    return value;
  }

  /** A boolean field (false when absent). */
  bool(obj: Table, path: KeyPath, key: string): boolean {
    const value = obj[key];
    if (value === undefined) return false;
    if (typeof value !== "boolean") {
      this.fail([...path, key], `expected true or false, got ${describe(value)}`);
      return false;
    }
    return value;
  }

  /** A list of distinct strings (empty when absent). */
  strings(obj: Table, path: KeyPath, key: string): string[] {
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
      } else if (out.includes(item)) {
        this.fail([...at, i], `${q(item)} is listed twice`, "remove one");
      } else out.push(item);
    });
    return out;
  }
}

export { describe, isTable, type KeyPath, type Table };
