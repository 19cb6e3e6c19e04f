/**
 * Reply templates: `{{lastMessage}}`, `{{model}}`, `{{turn}}`, `{{request}}` and `{{match.N}}` /
 * `{{match.name}}` (regex groups) inside reply strings, filled in per request.
 *
 * @module
 */

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The placeholders every reply may use. */
export const PLAIN_PLACEHOLDERS: readonly string[] = ["lastMessage", "model", "turn", "request"];

/** Lists the placeholder names used in `text` (`match.1`, `model`, …). */
export function placeholdersIn(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

/** Replaces each `{{name}}` in `text` by `vars[name]` (an empty string when absent). */
export function fillTemplate(text: string, vars: Readonly<Record<string, string>>): string {
  if (!text.includes("{{")) return text;
  return text.replace(PLACEHOLDER, (_all, name: string) => vars[name] ?? "");
}

/** Fills templates in every string inside a JSON value (objects and arrays are copied). */
export function fillDeep(value: unknown, vars: Readonly<Record<string, string>>): unknown {
  if (typeof value === "string") return fillTemplate(value, vars);
  if (Array.isArray(value)) return value.map((v) => fillDeep(v, vars));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fillDeep(v, vars);
    return out;
  }
  return value;
}
