/**
 * Parses and validates `Distro.toml` into a typed {@link DistroManifest}. Every problem is
 * collected and thrown together as one {@link DistroManifestError}, each with the file, the
 * line of the offending key, the field and a fix, as the capsule manifest parser reports them.
 * The schema is `docs/distros.md`.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import { isVersion, VersionRange } from "../capsule/mod.ts";
import { TomlLocator } from "../capsule/internal.ts";
import { describe, DistroContext, type Table } from "./_distro_context.ts";
import { DistroCode, DistroError, DistroManifestError } from "./errors.ts";
import {
  type BrandingSection,
  DISTRO_NAME_RE,
  DISTRO_SCHEMA_VERSION,
  type DistroCapsule,
  type DistroGroup,
  type DistroManifest,
  type DistroSection,
  type InvitesSection,
  VARIABLE_NAME_RE,
  type VariableDef,
} from "./distro_manifest.ts";
import { BUILTIN_VARIABLES, templateProblem, templateVariables } from "./distro_template.ts";

/** The largest `Distro.toml` accepted, in bytes. */
export const MAX_DISTRO_BYTES = 1024 * 1024;

const q = JSON.stringify;
const CAPSULE_NAME_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const COLOR_RE = /^#[0-9A-Fa-f]{6}$/;
const DURATION_RE = /^[1-9][0-9]{0,8}(s|m|h|d)$/;

const TOP = ["schema_version", "distro", "variables", "group", "capsule", "invites", "branding"];
const DISTRO_KEYS = [
  "name",
  "version",
  "description",
  "source_root",
  "astrid_version",
  "homepage",
  "license",
  "authors",
];
const VARIABLE_KEYS = ["description", "secret", "default", "required"];
const GROUP_KEYS = ["name", "description", "capsules", "default"];
const CAPSULE_KEYS = ["name", "source", "version", "group", "env"];
const INVITE_KEYS = ["issuers", "default_group", "default_expires", "max_principals"];
const BRANDING_KEYS = ["display_name", "tagline", "icon", "primary_color", "accent_color"];

/** Options of {@link parseDistro}. */
export interface ParseDistroOptions {
  /** The file the text came from; every message names it. */
  readonly file: string;
}

/** Parses `text`, the contents of `options.file`; throws {@link DistroManifestError} listing every problem. */
export function parseDistro(text: string, options: ParseDistroOptions): DistroManifest {
  const file = options.file;
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_DISTRO_BYTES) {
    throw new DistroManifestError(file, [{
      file,
      line: 1,
      field: "(file)",
      problem: `the file is ${bytes} bytes, the limit is ${MAX_DISTRO_BYTES}`,
    }]);
  }
  let doc: Table;
  try {
    doc = parse(text, { maxDepth: 16, unsafeKeyBehaviour: "throw" }) as Table;
  } catch (cause) {
    if (!(cause instanceof TomlError)) throw cause;
    const detail = cause.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    const near = text.split(/\r?\n/)[cause.line - 1]?.trim().slice(0, 60);
    throw new DistroManifestError(file, [{
      file,
      line: cause.line,
      column: cause.column,
      field: "(syntax)",
      problem: `invalid TOML: ${detail}` + (near ? ` in ${q(near)}` : ""),
      fix: "see https://toml.io for the syntax",
    }]);
  }
  const ctx = new DistroContext(file, new TomlLocator(text));
  const manifest = readDistroDoc(ctx, doc);
  if (ctx.issues.length > 0) {
    const sorted = [...ctx.issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new DistroManifestError(file, sorted);
  }
  return manifest;
}

/** Reads and parses the `Distro.toml` at `path`; `DISTRO_NOT_FOUND` when there is none. */
export async function loadDistro(path: string): Promise<DistroManifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotFound)) throw cause;
    throw new DistroError(DistroCode.DISTRO_NOT_FOUND, `No distro manifest at "${path}"`, {
      data: { path },
      cause,
    });
  }
  return parseDistro(text, { file: path });
}

function readDistroDoc(ctx: DistroContext, doc: Table): DistroManifest {
  ctx.knownFields(doc, [], TOP, "at the top level");
  let schema = DISTRO_SCHEMA_VERSION;
  if (doc.schema_version !== undefined) {
    if (doc.schema_version !== DISTRO_SCHEMA_VERSION) {
      ctx.fail(
        ["schema_version"],
        `unsupported schema_version ${q(doc.schema_version)}`,
        `this Astrid reads schema_version = ${DISTRO_SCHEMA_VERSION}; upgrade Astrid or the file`,
      );
    }
    schema = DISTRO_SCHEMA_VERSION;
  }
  const distro = readDistroSection(ctx, doc.distro);
  const variables = readVariables(ctx, doc.variables);
  const capsules = readCapsules(ctx, doc.capsule, variables);
  const groups = readGroups(ctx, doc.group, capsules);
  checkGroupRefs(ctx, capsules, groups);
  const invites = doc.invites === undefined ? undefined : readInvites(ctx, doc.invites);
  const branding = doc.branding === undefined ? undefined : readBranding(ctx, doc.branding);
  return {
    file: ctx.file,
    schema_version: schema,
    distro,
    variables,
    group: groups,
    capsule: capsules.map(({ index: _, ...c }) => c),
    ...(invites ? { invites } : {}),
    ...(branding ? { branding } : {}),
  };
}

function readDistroSection(ctx: DistroContext, value: unknown): DistroSection {
  const empty: DistroSection = { name: "", version: "", source_root: ".", authors: [] };
  if (value === undefined) {
    ctx.fail(["distro"], "missing [distro]", 'add [distro] with name = "…" and version = "0.1.0"');
    return empty;
  }
  const t = ctx.table(value, ["distro"], "a table [distro]");
  if (!t) return empty;
  const p = ["distro"];
  ctx.knownFields(t, p, DISTRO_KEYS, "in [distro]");
  const name = ctx.string(t, p, "name", { required: 'add name = "my-distro"' }) ?? "";
  if (name !== "" && !DISTRO_NAME_RE.test(name)) {
    ctx.fail(
      [...p, "name"],
      `invalid distro name ${q(name)}`,
      'use 1 to 64 characters of a-z, 0-9 and "-", starting with a letter or digit',
    );
  }
  const version = ctx.string(t, p, "version", { required: 'add version = "0.1.0"' }) ?? "";
  if (version !== "" && !isVersion(version)) {
    ctx.fail(
      [...p, "version"],
      `invalid version ${q(version)}`,
      'use MAJOR.MINOR.PATCH, e.g. "0.1.0"',
    );
  }
  const astrid = ctx.string(t, p, "astrid_version");
  if (astrid !== undefined) checkRange(ctx, [...p, "astrid_version"], astrid);
  const out: DistroSection = {
    name,
    version,
    source_root: ctx.string(t, p, "source_root") ?? ".",
    authors: ctx.strings(t, p, "authors"),
  };
  const description = ctx.string(t, p, "description");
  const homepage = ctx.string(t, p, "homepage");
  const license = ctx.string(t, p, "license");
  return {
    ...out,
    ...(description !== undefined ? { description } : {}),
    ...(astrid !== undefined ? { astrid_version: astrid } : {}),
    ...(homepage !== undefined ? { homepage } : {}),
    ...(license !== undefined ? { license } : {}),
  };
}

function checkRange(ctx: DistroContext, path: (string | number)[], range: string): void {
  const problem = VersionRange.problem(range);
  if (problem !== undefined) {
    ctx.fail(path, `invalid version range ${q(range)}: ${problem}`, 'e.g. "^0.1" or "0.1.0"');
  }
}

function readVariables(ctx: DistroContext, value: unknown): VariableDef[] {
  if (value === undefined) return [];
  const t = ctx.table(value, ["variables"], "a table [variables] of name = { … } entries");
  if (!t) return [];
  const out: VariableDef[] = [];
  for (const [name, raw] of Object.entries(t)) {
    const p = ["variables", name];
    if (!VARIABLE_NAME_RE.test(name)) {
      ctx.fail(
        p,
        `invalid variable name ${q(name)}`,
        'use letters, digits and "_", e.g. "api_key"',
      );
      continue;
    }
    if (BUILTIN_VARIABLES.includes(name)) {
      ctx.fail(p, `${q(name)} is a built-in variable`, "rename it; init fills it itself");
      continue;
    }
    const v = ctx.table(raw, p, "a table { description = …, secret = … }");
    if (!v) continue;
    ctx.knownFields(v, p, VARIABLE_KEYS, "in a [variables] entry");
    const secret = ctx.bool(v, p, "secret");
    const dflt = ctx.string(v, p, "default");
    if (secret && dflt !== undefined) {
      ctx.fail(
        [...p, "default"],
        "a secret variable cannot have a default",
        "remove default: it would ship in the distro; the secret is asked at init",
      );
    }
    const description = ctx.string(v, p, "description");
    out.push({
      name,
      secret,
      required: ctx.bool(v, p, "required"),
      ...(description !== undefined ? { description } : {}),
      ...(dflt !== undefined && !secret ? { default: dflt } : {}),
    });
  }
  return out;
}

function tableList(ctx: DistroContext, value: unknown, key: string): (Table | undefined)[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    ctx.fail([key], `expected [[${key}]] entries, got a single table`, `write [[${key}]] headers`);
    return [];
  }
  return value.map((v, i) => ctx.table(v, [key, i], `a [[${key}]] table`));
}

/** A capsule entry and its index among the `[[capsule]]` tables (for locating problems). */
type Indexed = DistroCapsule & { readonly index: number };

function readCapsules(
  ctx: DistroContext,
  value: unknown,
  variables: readonly VariableDef[],
): Indexed[] {
  const list = tableList(ctx, value, "capsule");
  if (value === undefined) {
    ctx.fail(
      [],
      "the distro lists no capsules",
      "add [[capsule]] entries with name, source and version",
    );
  }
  const out: Indexed[] = [];
  const seen = new Set<string>();
  list.forEach((t, i) => {
    if (!t) return;
    const p = ["capsule", i];
    ctx.knownFields(t, p, CAPSULE_KEYS, "in [[capsule]]");
    const name = ctx.string(t, p, "name", { required: 'add name = "<capsule name>"' });
    if (name !== undefined && !CAPSULE_NAME_RE.test(name)) {
      ctx.fail(
        [...p, "name"],
        `invalid capsule name ${q(name)}`,
        'use a-z, 0-9 and "-", e.g. "tools-fs"',
      );
    }
    if (name !== undefined && seen.has(name)) {
      ctx.fail([...p, "name"], `capsule ${q(name)} is listed twice`, "remove one [[capsule]]");
    }
    if (name !== undefined) seen.add(name);
    const source = ctx.string(t, p, "source", {
      required: 'add source = "capsules/<name>" (a directory or .capsule) or "@org/name"',
    });
    const version = ctx.string(t, p, "version", { required: 'add version = "0.1.0" or a range' });
    if (version !== undefined) checkRange(ctx, [...p, "version"], version);
    const group = ctx.string(t, p, "group");
    const env: Record<string, string> = {};
    if (t.env !== undefined) {
      const e = ctx.table(t.env, [...p, "env"], 'a table { NAME = "value" }');
      for (const [k, v] of Object.entries(e ?? {})) {
        const at = [...p, "env", k];
        if (!ENV_NAME_RE.test(k)) {
          ctx.fail(
            at,
            `invalid [env] field name ${q(k)}`,
            'use the capsule\'s [env] name, e.g. "API_KEY"',
          );
          continue;
        }
        if (typeof v !== "string") {
          ctx.fail(
            at,
            `expected a string, got ${describe(v)}`,
            'write "value" or "{{ variable }}"',
          );
          continue;
        }
        const bad = templateProblem(v);
        if (bad) {
          ctx.fail(at, bad);
          continue;
        }
        for (const ref of templateVariables(v)) {
          if (!BUILTIN_VARIABLES.includes(ref) && !variables.some((x) => x.name === ref)) {
            ctx.fail(
              at,
              `template refers to undefined variable ${q(ref)}`,
              `add [variables] ${ref} = { description = "…" }`,
            );
          }
        }
        env[k] = v;
      }
    }
    if (name === undefined || source === undefined || version === undefined) return;
    out.push({ name, source, version, env, ...(group !== undefined ? { group } : {}), index: i });
  });
  return out;
}

function readGroups(
  ctx: DistroContext,
  value: unknown,
  capsules: readonly DistroCapsule[],
): DistroGroup[] {
  const list = tableList(ctx, value, "group");
  const out: DistroGroup[] = [];
  list.forEach((t, i) => {
    if (!t) return;
    const p = ["group", i];
    ctx.knownFields(t, p, GROUP_KEYS, "in [[group]]");
    const name = ctx.string(t, p, "name", { required: 'add name = "<group>"' });
    if (name !== undefined && !CAPSULE_NAME_RE.test(name)) {
      ctx.fail(
        [...p, "name"],
        `invalid group name ${q(name)}`,
        'use a-z, 0-9 and "-", e.g. "anthropic"',
      );
    }
    if (name !== undefined && out.some((g) => g.name === name)) {
      ctx.fail([...p, "name"], `group ${q(name)} is defined twice`, "remove one [[group]]");
      return;
    }
    const listed = ctx.strings(t, p, "capsules");
    listed.forEach((c, j) => {
      if (!capsules.some((x) => x.name === c)) {
        ctx.fail([...p, "capsules", j], `no [[capsule]] named ${q(c)}`, "add it, or fix the name");
      }
    });
    const description = ctx.string(t, p, "description");
    if (name === undefined) return;
    const members = capsules.filter((c) => c.group === name || listed.includes(c.name)).map((c) =>
      c.name
    );
    out.push({
      name,
      capsules: members,
      default: ctx.bool(t, p, "default"),
      ...(description !== undefined ? { description } : {}),
    });
  });
  out.forEach((g, i) => {
    if (g.capsules.length === 0) {
      ctx.fail(
        ["group", i],
        `group ${q(g.name)} has no capsules`,
        'list capsules = ["…"], or set group on a [[capsule]]',
      );
    }
  });
  return out;
}

function checkGroupRefs(
  ctx: DistroContext,
  capsules: readonly Indexed[],
  groups: readonly DistroGroup[],
): void {
  const known = groups.map((g) => g.name);
  for (const c of capsules) {
    if (c.group === undefined || known.includes(c.group)) continue;
    ctx.fail(
      ["capsule", c.index, "group"],
      `group ${q(c.group)} is not defined`,
      `add [[group]] name = ${q(c.group)}` +
        (known.length ? ` (defined: ${known.join(", ")})` : ""),
    );
  }
}

function readInvites(ctx: DistroContext, value: unknown): InvitesSection | undefined {
  const t = ctx.table(value, ["invites"], "a table [invites]");
  if (!t) return undefined;
  const p = ["invites"];
  ctx.knownFields(t, p, INVITE_KEYS, "in [invites]");
  const issuers = ctx.strings(t, p, "issuers");
  const defaultGroup = ctx.string(t, p, "default_group");
  if (issuers.length > 0 && defaultGroup === undefined) {
    ctx.fail(
      p,
      "issuers are set but default_group is not",
      'add default_group = "<group new principals join>"',
    );
  }
  const expires = ctx.string(t, p, "default_expires");
  if (expires !== undefined && !DURATION_RE.test(expires)) {
    ctx.fail(
      [...p, "default_expires"],
      `invalid duration ${q(expires)}`,
      'use a number and s, m, h or d, e.g. "24h"',
    );
  }
  let max: number | undefined;
  if (t.max_principals !== undefined) {
    const v = t.max_principals;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      ctx.fail(
        [...p, "max_principals"],
        `expected a positive whole number, got ${q(v)}`,
        "remove it for no limit",
      );
    } else max = v;
  }
  return {
    issuers,
    ...(defaultGroup !== undefined ? { default_group: defaultGroup } : {}),
    ...(expires !== undefined ? { default_expires: expires } : {}),
    ...(max !== undefined ? { max_principals: max } : {}),
  };
}

function readBranding(ctx: DistroContext, value: unknown): BrandingSection | undefined {
  const t = ctx.table(value, ["branding"], "a table [branding]");
  if (!t) return undefined;
  const p = ["branding"];
  ctx.knownFields(t, p, BRANDING_KEYS, "in [branding]");
  const out: Record<string, string> = {};
  for (const key of BRANDING_KEYS) {
    const v = ctx.string(t, p, key, { max: key === "icon" ? 64 * 1024 : 200 });
    if (v === undefined) continue;
    if (key.endsWith("_color") && !COLOR_RE.test(v)) {
      ctx.fail([...p, key], `invalid colour ${q(v)}`, 'use #RRGGBB, e.g. "#5b3cc4"');
      continue;
    }
    out[key] = v;
  }
  return out as BrandingSection;
}
