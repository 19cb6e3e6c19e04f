/**
 * Folder-private: how values appear in messages, with secrets hidden.
 *
 * @module
 */

/** Describes a bad value for a message: strings quoted, tables and long arrays named. */
export function describeValue(value: unknown, key = ""): string {
  if (typeof value === "string") return JSON.stringify(redactSecret(key, value));
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof Date) return "a date";
  if (Array.isArray(value)) {
    const shown = `[${value.map((v) => describeValue(v)).join(", ")}]`;
    return shown.length <= 80 ? shown : `an array of ${value.length} items`;
  }
  if (isTable(value)) return "a table";
  return String(value);
}

/** Hides the password of a `storage.url` (`postgres://u:***@h/db`); other values unchanged. */
export function redactSecret(key: string, value: string): string {
  return key === "storage.url" ? value.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/, "$1***@") : value;
}

/** True for a TOML table (a plain object, not an array or a date). */
export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}
