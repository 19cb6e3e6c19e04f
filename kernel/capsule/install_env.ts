/**
 * A capsule's `[env]` values for one principal: what the operator answered at install (or
 * passed with `--env`, or a distro filled in from its variables), checked against the
 * manifest's `[env]` fields and stored at `home/{principal}/.config/env/<capsule>.env.json`,
 * written atomically with mode 0600 (secrets included; the file is the principal's, never the
 * manifest's). Only given values are stored; a field's `default` stays in the manifest and
 * {@link effectiveEnv} applies it when the capsule reads its configuration, so a new version's
 * default takes effect without a reinstall.
 *
 * The file is one JSON object: `{ "API_KEY": "…", "BLOCKED": ["a.com"] }` (strings, and lists
 * of strings for `array` fields). The host ABI's `get_config` reads the same file
 * (`host_abi/lifecycle.ts` `envFilePath`), layered per field: the acting principal's own file,
 * then — for a capsule the operator installed for every principal (the `user` scope of the
 * `default` principal, loaded as the system scope) — the operator's file, then the manifest
 * default. So what `astrid init` or `capsule install` stores as the operator serves every
 * principal without values of its own ({@link envServesEveryone}); a principal- or
 * workspace-scope install's values serve only the principal they were stored for.
 *
 * @module
 */
import { join } from "node:path";
import { type AstridHome, atomicWrite, ensureDir } from "../home/mod.ts";
import { DEFAULT_PRINCIPAL, type PrincipalId } from "../identity/mod.ts";
import { CapsuleCode, CapsuleError } from "./errors.ts";
import type { CapsuleScope } from "./discovery.ts";
import type { CapsuleManifest, EnvField } from "./manifest.ts";

/** One `[env]` value: a string, or a list of strings for an `array` field. */
export type EnvValue = string | readonly string[];
/** `[env]` values by field name. */
export type EnvValues = Readonly<Record<string, EnvValue>>;

/** The longest value accepted for one field, in characters (an `array` counts all items). */
export const MAX_ENV_VALUE_CHARS = 16 * 1024;

const q = JSON.stringify;

/** Whose `[env]` values: one capsule's, for one principal. */
export interface EnvOwner {
  /** The principal. */
  readonly principal: PrincipalId;
  /** The capsule's name. */
  readonly capsule: string;
}

/** `home/{principal}/.config/env/<capsule>.env.json`. */
export function capsuleEnvPath(home: AstridHome, owner: EnvOwner): string {
  return join(home.principalDir(owner.principal), ".config", "env", `${owner.capsule}.env.json`);
}

/**
 * True when the values an install stores for `install.principal` in `install.scope` also serve
 * every other principal that has none of its own: an operator (`default`) install in the `user`
 * scope, which the daemon loads as the system scope. Other installs keep their values to their
 * principal.
 */
export function envServesEveryone(
  install: { readonly principal: PrincipalId; readonly scope: CapsuleScope },
): boolean {
  return install.scope === "user" && install.principal === DEFAULT_PRINCIPAL;
}

/** Required fields with neither a value in `values` nor a default. */
export function missingEnv(manifest: CapsuleManifest, values: EnvValues): EnvField[] {
  return manifest.env.filter((f) => {
    if (!f.required) return false;
    const v = Object.hasOwn(values, f.name) ? values[f.name] : f.default;
    return v === undefined || (typeof v === "string" && v === "") ||
      (Array.isArray(v) && v.length === 0);
  });
}

/**
 * Checks `values` against the manifest's `[env]`: every key a declared field, strings for
 * text/secret/select (a select one of its options), lists of strings for arrays, within
 * {@link MAX_ENV_VALUE_CHARS}, and every required field given or defaulted. Throws
 * `INSTALL_ENV_INVALID` listing every problem; returns the values unchanged otherwise.
 */
export function checkCapsuleEnv(manifest: CapsuleManifest, values: EnvValues): EnvValues {
  const name = manifest.package.name;
  const problems: string[] = [];
  const fields = new Map(manifest.env.map((f) => [f.name, f]));
  for (const [key, value] of Object.entries(values)) {
    const field = fields.get(key);
    if (field === undefined) {
      const known = manifest.env.map((f) => f.name).join(", ") || "none";
      problems.push(`${q(key)} is not an [env] field of the capsule (fields: ${known})`);
      continue;
    }
    const problem = valueProblem(field, value);
    if (problem !== undefined) problems.push(problem);
  }
  for (const f of missingEnv(manifest, values)) {
    problems.push(
      `required field ${q(f.name)}${f.description ? ` (${f.description})` : ""} has no value`,
    );
  }
  if (problems.length > 0) {
    throw new CapsuleError(
      CapsuleCode.INSTALL_ENV_INVALID,
      `Invalid [env] values for capsule ${q(name)}: ${problems.join("; ")}`,
      { data: { name, reason: problems.join("; ") } },
    );
  }
  return values;
}

function valueProblem(field: EnvField, value: EnvValue): string | undefined {
  const at = q(field.name);
  if (field.type === "array") {
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      return `${at} is an array field: give a list of strings`;
    }
    const chars = value.reduce((n, v) => n + v.length, 0);
    if (chars > MAX_ENV_VALUE_CHARS) {
      return `${at} is ${chars} characters, the limit is ${MAX_ENV_VALUE_CHARS}`;
    }
    return undefined;
  }
  if (typeof value !== "string") return `${at} is a ${field.type} field: give a string`;
  if (value.length > MAX_ENV_VALUE_CHARS) {
    return `${at} is ${value.length} characters, the limit is ${MAX_ENV_VALUE_CHARS}`;
  }
  if (field.type === "select" && !(field.options ?? []).includes(value)) {
    return `${at} must be one of ${(field.options ?? []).map((o) => q(o)).join(", ")}, got ${
      q(value)
    }`;
  }
  return undefined;
}

/**
 * Parses a value written on a command line (`--env KEY=VALUE`, a prompt answer) for `field`:
 * an `array` takes a JSON list (`["a","b"]`) or comma-separated items (`a, b`; empty text is
 * the empty list); every other type takes the text as it is.
 */
export function parseEnvText(field: EnvField, text: string): EnvValue {
  if (field.type !== "array") return text;
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    try {
      const list: unknown = JSON.parse(trimmed);
      if (Array.isArray(list) && list.every((v) => typeof v === "string")) return list;
    } catch {
      // fall through to the comma form
    }
  }
  return trimmed === "" ? [] : trimmed.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** The values a capsule sees: `values` over each field's default; fields with neither are absent. */
export function effectiveEnv(
  manifest: CapsuleManifest,
  values: EnvValues,
): Record<string, EnvValue> {
  const out: Record<string, EnvValue> = {};
  for (const f of manifest.env) {
    const v = Object.hasOwn(values, f.name) ? values[f.name] : f.default;
    if (v !== undefined) out[f.name] = v;
  }
  return out;
}

/**
 * Reads the stored values of `owner.capsule` for `owner.principal`; `{}` when there are none. A file that
 * is not a JSON object of strings and string lists is an `INSTALL_ENV_INVALID` error naming it.
 */
export async function readCapsuleEnv(
  home: AstridHome,
  owner: EnvOwner,
): Promise<Record<string, EnvValue>> {
  const path = capsuleEnvPath(home, owner);
  const capsule = owner.capsule;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw err;
  }
  const bad = (why: string) =>
    new CapsuleError(
      CapsuleCode.INSTALL_ENV_INVALID,
      `Invalid env file "${path}": ${why}; fix it or reinstall the capsule`,
      { data: { name: capsule, path, reason: why } },
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad("not JSON"); // the parser's message quotes the text, which may hold secrets
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("not a JSON object");
  const out: Record<string, EnvValue> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === "string") out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === "string")) out[k] = v;
    else throw bad(`field ${q(k)} is neither a string nor a list of strings`);
  }
  return out;
}

/**
 * Writes `options.values` of the manifest's capsule for `options.principal` atomically with mode 0600 (the directory
 * 0700), after {@link checkCapsuleEnv}. With no values and no file yet, writes nothing.
 * Returns the file's path.
 */
export async function writeCapsuleEnv(
  home: AstridHome,
  options: { principal: PrincipalId; manifest: CapsuleManifest; values: EnvValues },
): Promise<string> {
  const { principal, manifest, values } = options;
  checkCapsuleEnv(manifest, values);
  const path = capsuleEnvPath(home, { principal, capsule: manifest.package.name });
  const sorted = Object.fromEntries(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1)));
  if (Object.keys(sorted).length === 0) {
    const exists = await Deno.lstat(path).then(() => true, () => false);
    if (!exists) return path;
  }
  await ensureDir(join(home.principalDir(principal), ".config", "env"));
  await atomicWrite(path, JSON.stringify(sorted, null, 2) + "\n", { mode: 0o600 });
  return path;
}

/** Deletes the stored values of `owner.capsule` for `owner.principal`; false when there were none. */
export async function removeCapsuleEnv(home: AstridHome, owner: EnvOwner): Promise<boolean> {
  try {
    await Deno.remove(capsuleEnvPath(home, owner));
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
