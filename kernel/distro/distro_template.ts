/**
 * `{{ variable }}` templates in a distro's capsule `env` values: `"{{ api_key }}"`,
 * `"Bearer {{ token }}"`. Spaces inside the braces are optional; a name is
 * `[A-Za-z_][A-Za-z0-9_]*`; there is no escaping and no nesting.
 *
 * @module
 */

/**
 * Variables init fills itself, which a distro may use but not define: `groups`, the selected
 * groups' names joined by "," in `[[group]]` order (empty when none is selected).
 */
export const BUILTIN_VARIABLES: readonly string[] = ["groups"];

const TEMPLATE_RE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Why `text` is not a well-formed template, or undefined (an unclosed or empty `{{`). */
export function templateProblem(text: string): string | undefined {
  const stripped = text.replace(TEMPLATE_RE, "");
  if (stripped.includes("{{") || stripped.includes("}}")) {
    return `malformed template ${JSON.stringify(text)}: write {{ name }} with a variable name`;
  }
  return undefined;
}

/** The variable names `text` refers to, in order of first use. */
export function templateVariables(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(TEMPLATE_RE)) if (!out.includes(m[1])) out.push(m[1]);
  return out;
}

/**
 * Replaces every `{{ name }}` in `text` with its value; undefined when a referenced variable
 * has no value (the whole value is then left unset, never half-filled).
 */
export function renderTemplate(
  text: string,
  values: Readonly<Record<string, string>>,
): string | undefined {
  let missing = false;
  const out = text.replace(TEMPLATE_RE, (_, name: string) => {
    if (!Object.hasOwn(values, name)) {
      missing = true;
      return "";
    }
    return values[name];
  });
  return missing ? undefined : out;
}
