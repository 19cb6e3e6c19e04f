/**
 * `astrid capsule new`: writes a template into a new capsule directory.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { CAPSULE_NAME_RE } from "../../kernel/capsule/mod.ts";
import { BuildCode, BuildError } from "./errors.ts";
import { TEMPLATE_NAMES, type TemplateName, TEMPLATES } from "./templates.ts";

/** Options of {@link scaffoldCapsule}. */
export interface ScaffoldOptions {
  /** The template (default `tool`). */
  template?: string;
  /** Write into an existing non-empty directory, replacing the template's files. */
  force?: boolean;
}

/** The CamelCase of a capsule name: `web-search` → `WebSearch`. */
function camel(name: string): string {
  return name.split("-").map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
}

/**
 * Creates capsule `name` in `dir` from a template; returns the files written (relative).
 * Throws `SCAFFOLD_BAD_NAME`, `SCAFFOLD_UNKNOWN_TEMPLATE` or `SCAFFOLD_EXISTS`.
 */
export async function scaffoldCapsule(
  dir: string,
  name: string,
  options: ScaffoldOptions = {},
): Promise<string[]> {
  if (!CAPSULE_NAME_RE.test(name)) {
    throw new BuildError(
      BuildCode.SCAFFOLD_BAD_NAME,
      `Invalid capsule name "${name}": use 1 to 64 characters of a-z, 0-9 and "-", starting with a letter or digit, e.g. "hello-world"`,
      { data: { name } },
    );
  }
  const templateName = options.template ?? "tool";
  if (!(TEMPLATE_NAMES as readonly string[]).includes(templateName)) {
    throw new BuildError(
      BuildCode.SCAFFOLD_UNKNOWN_TEMPLATE,
      `Unknown template "${templateName}": use ${TEMPLATE_NAMES.join(", ")}`,
      { data: { template: templateName } },
    );
  }
  if (!options.force) {
    try {
      for await (const _ of Deno.readDir(dir)) {
        throw new BuildError(
          BuildCode.SCAFFOLD_EXISTS,
          `Cannot create capsule "${name}" in "${dir}": the directory is not empty; choose another or pass --force`,
          { data: { path: dir } },
        );
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  const template = TEMPLATES[templateName as TemplateName];
  const fill = (text: string) =>
    text.replaceAll("{{name}}", name).replaceAll("{{Name}}", camel(name));
  const written: string[] = [];
  for (const [path, text] of Object.entries(template.files)) {
    const rel = fill(path).replaceAll("-", path.startsWith("tests/") ? "_" : "-");
    const target = join(dir, rel);
    await Deno.mkdir(dirname(target), { recursive: true });
    await Deno.writeTextFile(target, fill(text));
    written.push(rel);
  }
  return written.sort();
}
