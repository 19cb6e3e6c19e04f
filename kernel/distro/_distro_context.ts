/**
 * Folder-private: the issue collector of the `Distro.toml` parser. Like the capsule
 * manifest's, it reads typed values and records a located problem (file, line, field, fix)
 * instead of throwing, so every problem is reported at once.
 *
 * @module
 */
import {
  closest,
  Context,
  describe,
  isTable,
  type KeyPath,
  type Table,
} from "../capsule/internal.ts";

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

/**
 * The manifest parser's collector (issues located by file, line, field, with a fix), plus the
 * distro's own unknown-key check with its kebab-case hints and the rule that a required string
 * may not be empty.
 */
export class DistroContext extends Context {
  /** Reports keys of `obj` that are not in `fields`; `where` names the table in messages. */
  knownFields(obj: Table, path: KeyPath, fields: readonly string[], where: string): void {
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

  /** A string field; `required` is the fix shown when it is missing or empty. */
  override string(
    obj: Table,
    path: KeyPath,
    key: string,
    opts: { required?: string; nonEmpty?: boolean; max?: number } = {},
  ): string | undefined {
    return super.string(obj, path, key, {
      ...opts,
      nonEmpty: opts.nonEmpty ?? opts.required !== undefined,
    });
  }
}

export { describe, isTable, type KeyPath, type Table };
