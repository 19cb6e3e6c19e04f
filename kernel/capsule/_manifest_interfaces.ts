/**
 * Folder-private: readers of the keyed tables of a manifest: `[imports]`/`[exports]`
 * (flat `"ns:name"` and nested `[imports.ns]` forms) and `[publish]`/`[subscribe]`.
 *
 * @module
 */
import { validatePattern } from "../events/mod.ts";
import {
  DEFAULT_HANDLER_PRIORITY,
  type ExportEntry,
  type ImportEntry,
  type JsonObject,
  type PublishEntry,
  type SubscribeEntry,
  TOOL_NAME_RE,
  TYPED_PREFIXES,
} from "./manifest.ts";
import { isVersion, VersionRange } from "./semver.ts";
import { type KeyPath } from "./_toml_locator.ts";
import { Context, describe, isTable } from "./_manifest_context.ts";
import {
  HANDLER_RE,
  handlerFix,
  INTERFACE_RE,
  NAMESPACE_RE,
  type Problem,
} from "./_manifest_values.ts";

const q = JSON.stringify;

function typedBodyProblem(namespace: string, body: string, id: string): Problem | undefined {
  if (!TYPED_PREFIXES.includes(namespace)) {
    return INTERFACE_RE.test(body) ? undefined : {
      problem: `invalid interface name ${q(body)} in ${q(id)}`,
      fix: `use a-z, 0-9, "_" and "-", starting with a letter, e.g. "astrid:llm"`,
    };
  }
  try {
    validatePattern(body);
  } catch (err) {
    const reason = (err as { data?: { reason?: string } }).data?.reason ?? String(err);
    return {
      problem: `invalid ${namespace} name ${q(body)} in ${q(id)}: ${reason}`,
      fix: `use dot-separated segments of a-z, A-Z, 0-9, "_", "-", or "*" for one segment`,
    };
  }
  if (namespace === "tool" && body !== "*" && !TOOL_NAME_RE.test(body)) {
    return {
      problem: `invalid tool name ${q(body)} in ${q(id)}`,
      fix: `a tool name is one segment matching ^[a-zA-Z0-9_-]{1,64}$, or "*"`,
    };
  }
  return undefined;
}

/** Reads `[imports]` or `[exports]` in flat and nested forms, sorted by id. */
export function readInterfaces(
  ctx: Context,
  value: unknown,
  kind: "imports" | "exports",
): (ImportEntry | ExportEntry)[] {
  if (value === undefined) return [];
  const t = ctx.table(value, [kind], `a table [${kind}]`);
  if (!t) return [];
  const out = new Map<string, ImportEntry | ExportEntry>();
  const entry = (namespace: string, name: string, raw: unknown, path: KeyPath) => {
    const id = `${namespace}:${name}`;
    if (!NAMESPACE_RE.test(namespace)) {
      ctx.fail(
        path,
        `invalid namespace ${q(namespace)} in ${q(id)}`,
        `use a-z, 0-9 and "-", starting with a letter, e.g. "astrid"`,
      );
      return;
    }
    if (ctx.problem(path, typedBodyProblem(namespace, name, id))) return;
    const parsed = kind === "imports"
      ? readImportValue(ctx, raw, path, id, namespace, name)
      : readExportValue(ctx, raw, path, id, namespace, name);
    if (!parsed) return;
    if (out.has(id)) {
      ctx.fail(
        path,
        `${q(id)} is declared twice`,
        "keep one entry (flat and nested forms name the same interface)",
      );
      return;
    }
    out.set(id, parsed);
  };
  for (const [key, raw] of Object.entries(t)) {
    const colon = key.indexOf(":");
    if (colon >= 0) {
      entry(key.slice(0, colon), key.slice(colon + 1), raw, [kind, key]);
      continue;
    }
    if (!isTable(raw) || ("version" in raw && !isTable(raw.version))) {
      ctx.fail(
        [kind, key],
        `${q(key)} is neither "namespace:interface" nor a namespace table`,
        kind === "imports"
          ? `write "${key}:<interface>" = "^1.0", or [imports.${key}] then <interface> = "^1.0"`
          : `write "${key}:<interface>" = "1.0.0", or [exports.${key}] then <interface> = "1.0.0"`,
      );
      continue;
    }
    for (const [name, inner] of Object.entries(raw)) entry(key, name, inner, [kind, key, name]);
  }
  return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function readImportValue(
  ctx: Context,
  raw: unknown,
  path: KeyPath,
  id: string,
  namespace: string,
  name: string,
): ImportEntry | undefined {
  let version: string | undefined;
  let optional = false;
  if (typeof raw === "string") version = raw;
  else if (isTable(raw)) {
    ctx.known(raw, path, "imports.*");
    version = ctx.string(raw, path, "version", {
      required: `add version = "^1.0" (or "*" for any)`,
    });
    optional = ctx.bool(raw, path, "optional");
    if (version === undefined) return undefined;
  } else {
    ctx.fail(
      path,
      `expected a version range or { version, optional }, got ${describe(raw)}`,
      `write ${q(id)} = "^1.0"`,
    );
    return undefined;
  }
  const at = isTable(raw) ? [...path, "version"] : path;
  const p = VersionRange.problem(version);
  if (p) {
    ctx.fail(at, `invalid version range ${q(version)} for ${q(id)}: ${p}`);
    return undefined;
  }
  return { id, namespace, name, version, optional };
}

function readExportValue(
  ctx: Context,
  raw: unknown,
  path: KeyPath,
  id: string,
  namespace: string,
  name: string,
): ExportEntry | undefined {
  let version: string | undefined;
  if (typeof raw === "string") version = raw;
  else if (isTable(raw)) {
    ctx.known(raw, path, "exports.*");
    version = ctx.string(raw, path, "version", { required: `add version = "1.0.0"` });
    if (version === undefined) return undefined;
  } else {
    ctx.fail(
      path,
      `expected a version or { version }, got ${describe(raw)}`,
      `write ${q(id)} = "1.0.0"`,
    );
    return undefined;
  }
  if (!isVersion(version)) {
    ctx.fail(
      isTable(raw) ? [...path, "version"] : path,
      `${q(version)} is not an exact version for ${q(id)}`,
      `an export provides one version: write MAJOR.MINOR.PATCH, e.g. "1.0.0"`,
    );
    return undefined;
  }
  return { id, namespace, name, version };
}

/** Reads `[publish]` or `[subscribe]`, in file order. */
export function readTopics(
  ctx: Context,
  value: unknown,
  kind: "publish" | "subscribe",
): (PublishEntry | SubscribeEntry)[] {
  if (value === undefined) return [];
  const t = ctx.table(value, [kind], `a table [${kind}] of topic = { wit = "…" } entries`);
  if (!t) return [];
  const out: (PublishEntry | SubscribeEntry)[] = [];
  for (const [topic, raw] of Object.entries(t)) {
    const path = [kind, topic];
    try {
      validatePattern(topic);
    } catch (err) {
      const reason = (err as { data?: { reason?: string } }).data?.reason ?? String(err);
      ctx.fail(
        path,
        `invalid topic pattern ${q(topic)}: ${reason}`,
        `use dot-separated segments of a-z, A-Z, 0-9, "_", "-", with "*" as a whole segment`,
      );
      continue;
    }
    if (typeof raw === "string") {
      if (raw.trim() === "") ctx.fail(path, "wit is empty", `name the payload type, or "opaque"`);
      else out.push(kind === "publish" ? { topic, wit: raw, fanout: false } : { topic, wit: raw });
      continue;
    }
    const e = ctx.table(raw, path, `a payload type string or a table { wit, schema, … }`);
    if (!e) continue;
    ctx.known(e, path, `${kind}.*`);
    const wit = ctx.string(e, path, "wit", { nonEmpty: true });
    let schema: JsonObject | undefined;
    if (e.schema !== undefined) {
      const s = ctx.table(e.schema, [...path, "schema"], "a JSON Schema table");
      if (s) schema = ctx.json(s, [...path, "schema"]) as JsonObject | undefined;
    }
    if (e.wit === undefined && e.schema === undefined) {
      ctx.fail(
        path,
        `${q(topic)} declares no payload type`,
        `add wit = "<type>" (or wit = "opaque" for untyped bytes), or a schema table`,
      );
    }
    const description = ctx.string(e, path, "description");
    const common = {
      topic,
      ...(wit !== undefined ? { wit } : {}),
      ...(schema !== undefined ? { schema } : {}),
      ...(description !== undefined ? { description } : {}),
    };
    if (kind === "publish") {
      out.push({ ...common, fanout: ctx.bool(e, path, "fanout") });
      continue;
    }
    const handler = ctx.string(e, path, "handler");
    if (handler !== undefined && !HANDLER_RE.test(handler)) {
      ctx.fail([...path, "handler"], `invalid export name ${q(handler)}`, handlerFix(handler));
    }
    let priority: number | undefined;
    if (e.priority !== undefined) {
      const p = e.priority;
      if (typeof p !== "number" || !Number.isInteger(p) || p < 0 || p > 4294967295) {
        ctx.fail(
          [...path, "priority"],
          `expected a whole number from 0 to 4294967295, got ${describe(p)}`,
          "lower runs first; the default is 100",
        );
      } else if (handler === undefined) {
        ctx.fail(
          [...path, "priority"],
          `priority orders interceptors, but ${q(topic)} has no handler`,
          `add handler = "<export>" to bind an interceptor, or remove priority (an ACL-only entry has none)`,
        );
      } else priority = p;
    }
    let guard: boolean | undefined;
    if (typeof e.guard !== "boolean") {
      ctx.bool(e, path, "guard"); // absent: nothing; anything else: the type error
    } else if (handler === undefined) {
      ctx.fail(
        [...path, "guard"],
        `guard decides whether a failing interceptor denies the message, but ${
          q(topic)
        } has no handler`,
        `add handler = "<export>" to bind an interceptor, or remove guard (an ACL-only entry has none)`,
      );
    } else guard = e.guard;
    let detach = false;
    if (typeof e.detach !== "boolean") {
      ctx.bool(e, path, "detach"); // absent: nothing; anything else: the type error
    } else if (e.detach && handler === undefined) {
      ctx.fail(
        [...path, "detach"],
        `detach runs a handler apart from the publisher, but ${q(topic)} has no handler`,
        `add handler = "<export>", or remove detach (an ACL-only entry has none)`,
      );
    } else if (e.detach && (e.priority !== undefined || e.guard !== undefined)) {
      const field = e.priority !== undefined ? "priority" : "guard";
      ctx.fail(
        [...path, "detach"],
        `a detached handler runs after delivery, so it neither orders nor guards the message, but ${
          q(topic)
        } also sets ${field}`,
        `remove ${field}, or remove detach to bind an interceptor the publisher waits for`,
      );
    } else detach = e.detach;
    out.push({
      ...common,
      ...(handler !== undefined && detach ? { handler, detach: true } : {}),
      ...(handler !== undefined && !detach
        ? { handler, priority: priority ?? DEFAULT_HANDLER_PRIORITY }
        : {}),
      ...(guard !== undefined && !detach ? { guard } : {}),
    });
  }
  return out;
}
