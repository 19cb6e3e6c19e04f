/**
 * Folder-private: readers of the single tables of a manifest: `[package]`, `[wasm]`,
 * `[capabilities]`, `[static]`.
 *
 * @module
 */
import {
  type CapabilitiesSection,
  CAPSULE_NAME_RE,
  IDENTITY_LEVELS,
  type IdentityLevel,
  type PackageSection,
  type StaticSection,
  type WasmSection,
} from "./manifest.ts";
import { isVersion, VersionRange } from "./semver.ts";
import { type KeyPath } from "./_toml_locator.ts";
import { Context, describe } from "./_manifest_context.ts";
import {
  hashProblem,
  netBindProblem,
  netEntryProblem,
  programProblem,
  relativePathProblem,
  staticPathProblem,
  vfsPathProblem,
} from "./_manifest_values.ts";

const q = JSON.stringify;

/** Reads `[package]`; a missing one is a problem, not a throw. */
export function readPackage(ctx: Context, value: unknown): PackageSection {
  const path = ["package"];
  const fallback: PackageSection = { name: "", version: "", authors: [], keywords: [] };
  if (value === undefined) {
    ctx.fail(
      path,
      "missing [package]",
      `add [package] with name = "my-capsule" and version = "0.1.0"`,
    );
    return fallback;
  }
  const t = ctx.table(value, path, "a table [package]");
  if (!t) return fallback;
  ctx.known(t, path, "package");
  const name = ctx.string(t, path, "name", { required: `add name = "my-capsule"` }) ?? "";
  if (name !== "" && !CAPSULE_NAME_RE.test(name)) {
    const slug = name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "")
      .slice(0, 64);
    ctx.fail(
      [...path, "name"],
      `invalid capsule name ${q(name)}`,
      `use 1 to 64 characters of a-z, 0-9 and "-", starting with a letter or digit` +
        (slug && CAPSULE_NAME_RE.test(slug) ? `, e.g. ${q(slug)}` : ""),
    );
  }
  const version = ctx.string(t, path, "version", { required: `add version = "0.1.0"` }) ?? "";
  if (version !== "" && !isVersion(version)) {
    const parts = version.replace(/^v/, "").split(".");
    const guess = /^\d+(\.\d+){0,2}$/.test(version.replace(/^v/, ""))
      ? `, e.g. ${q([...parts, "0", "0"].slice(0, 3).join("."))}`
      : `, e.g. "0.1.0"`;
    ctx.fail(
      [...path, "version"],
      `${q(version)} is not a semantic version`,
      `use MAJOR.MINOR.PATCH${guess}`,
    );
  }
  const url = (key: string): string | undefined => {
    const v = ctx.string(t, path, key);
    if (v !== undefined && !/^https?:\/\/\S+$/.test(v)) {
      ctx.fail([...path, key], `${q(v)} is not an http(s) URL`, "write the full https://… address");
      return undefined;
    }
    return v;
  };
  const astrid = ctx.string(t, path, "astrid_version");
  if (astrid !== undefined) {
    const p = VersionRange.problem(astrid);
    if (p) ctx.fail([...path, "astrid_version"], `invalid version range ${q(astrid)}: ${p}`);
  }
  const description = ctx.string(t, path, "description");
  const license = ctx.string(t, path, "license");
  const repository = url("repository");
  const homepage = url("homepage");
  return {
    name,
    version,
    ...(description !== undefined ? { description } : {}),
    authors: ctx.strings(t, path, "authors"),
    ...(license !== undefined ? { license } : {}),
    ...(repository !== undefined ? { repository } : {}),
    ...(homepage !== undefined ? { homepage } : {}),
    keywords: ctx.strings(t, path, "keywords"),
    ...(astrid !== undefined ? { astrid_version: astrid } : {}),
  };
}

/** Reads `[wasm]` (the file defaults to `<name>.wasm`); refuses a top-level string. */
export function readWasm(ctx: Context, value: unknown, name: string): WasmSection | undefined {
  const path = ["wasm"];
  if (value === undefined) return undefined;
  if (typeof value === "string") {
    ctx.fail(
      path,
      `expected a [wasm] table, got ${describe(value)}`,
      `write [wasm] and on the next line file = ${q(value)}`,
    );
    return undefined;
  }
  const t = ctx.table(value, path, "a table [wasm]");
  if (!t) return undefined;
  ctx.known(t, path, "wasm");
  const file = ctx.string(t, path, "file") ?? `${name || "capsule"}.wasm`;
  if (!ctx.problem([...path, "file"], relativePathProblem(file)) && !file.endsWith(".wasm")) {
    ctx.fail(
      [...path, "file"],
      `${q(file)} does not end in .wasm`,
      `name the module file, e.g. "${name}.wasm"`,
    );
  }
  const hash = ctx.string(t, path, "hash");
  if (hash !== undefined) ctx.problem([...path, "hash"], hashProblem(hash));
  return { file, ...(hash !== undefined ? { hash } : {}) };
}

/** Reads `[capabilities]` with every default filled (all denied). */
export function readCapabilities(ctx: Context, value: unknown): CapabilitiesSection {
  const path = ["capabilities"];
  const t = value === undefined ? {} : ctx.table(value, path, "a table [capabilities]") ?? {};
  ctx.known(t, path, "capabilities");
  const identity = readIdentity(ctx, t.identity, [...path, "identity"]);
  const caps: CapabilitiesSection = {
    fs_read: ctx.strings(t, path, "fs_read", vfsPathProblem),
    fs_write: ctx.strings(t, path, "fs_write", vfsPathProblem),
    net: ctx.strings(t, path, "net", netEntryProblem).map((s) => s.toLowerCase()),
    net_bind: ctx.strings(t, path, "net_bind", netBindProblem),
    host_process: ctx.strings(t, path, "host_process", programProblem),
    allow_persistent: ctx.bool(t, path, "allow_persistent"),
    kv: ctx.bool(t, path, "kv"),
    ...(identity ? { identity } : {}),
    http: ctx.bool(t, path, "http"),
    uplink: ctx.bool(t, path, "uplink"),
    approval: ctx.bool(t, path, "approval"),
    allow_prompt_injection: ctx.bool(t, path, "allow_prompt_injection"),
  };
  if (caps.allow_persistent && caps.host_process.length === 0) {
    ctx.fail(
      [...path, "allow_persistent"],
      "allow_persistent has no effect without host_process",
      `list the programs in host_process, e.g. host_process = ["git"], or remove allow_persistent`,
    );
  }
  if (caps.http && caps.net.length === 0) {
    ctx.fail(
      [...path, "http"],
      "http = true allows no host: net is empty",
      `list the hosts, e.g. net = ["api.example.com:443"]`,
    );
  }
  if (!caps.http && caps.net.length > 0) {
    ctx.fail([...path, "net"], "net lists hosts but http is not enabled", "add http = true");
  }
  return caps;
}

function readIdentity(ctx: Context, value: unknown, path: KeyPath): IdentityLevel | undefined {
  if (value === undefined) return undefined;
  const levels = Array.isArray(value) ? value : [value];
  let best = -1;
  for (let i = 0; i < levels.length; i++) {
    const v = levels[i];
    const idx = typeof v === "string" ? IDENTITY_LEVELS.indexOf(v as IdentityLevel) : -1;
    if (idx < 0) {
      ctx.fail(
        Array.isArray(value) ? [...path, i] : path,
        `expected one of "resolve", "link", "admin", got ${describe(v)}`,
        `admin implies link, which implies resolve: write the strongest one you need`,
      );
      continue;
    }
    best = Math.max(best, idx);
  }
  return best >= 0 ? IDENTITY_LEVELS[best] : undefined;
}

/** Reads `[static]`. */
export function readStatic(ctx: Context, value: unknown): StaticSection {
  if (value === undefined) return { context_files: [] };
  const t = ctx.table(value, ["static"], "a table [static]");
  if (!t) return { context_files: [] };
  ctx.known(t, ["static"], "static");
  return { context_files: ctx.strings(t, ["static"], "context_files", staticPathProblem) };
}
