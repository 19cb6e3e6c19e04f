/**
 * Folder-private: readers of the arrays of tables of a manifest (`[[tool]]`, `[[command]]`,
 * `[[skill]]`, `[[mcp_server]]`, `[[uplink]]`, `[[cron]]`) and of `[env]`.
 *
 * @module
 */
import { validatePattern } from "../events/mod.ts";
import {
  CAPSULE_NAME_RE,
  type CommandEntry,
  type CronEntry,
  ENV_TYPES,
  type EnvField,
  type EnvFieldType,
  type JsonObject,
  type McpServerEntry,
  type SkillEntry,
  TOOL_NAME_RE,
  type ToolEntry,
  UPLINK_PROFILES,
  type UplinkEntry,
  type UplinkProfile,
} from "./manifest.ts";
import { closest } from "./_suggest.ts";
import { type KeyPath } from "./_toml_locator.ts";
import { Context, describe, type Table } from "./_manifest_context.ts";
import {
  cronProblem,
  ENV_NAME_RE,
  HANDLER_RE,
  handlerFix,
  hashProblem,
  programProblem,
  SLUG_RE,
  staticPathProblem,
} from "./_manifest_values.ts";

const q = JSON.stringify;

/** Reads an array of tables `[[name]]`, checking each entry's keys, with `read` per entry. */
export function readArray<T>(
  ctx: Context,
  value: unknown,
  name: string,
  read: (ctx: Context, t: Table, path: KeyPath) => T | undefined,
): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    ctx.fail(
      [name],
      `expected [[${name}]] entries, got ${describe(value)}`,
      `write each entry under its own [[${name}]] header`,
    );
    return [];
  }
  const out: T[] = [];
  value.forEach((item, i) => {
    const t = ctx.table(item, [name, i], `a [[${name}]] table`);
    if (!t) return;
    ctx.known(t, [name, i], name);
    const entry = read(ctx, t, [name, i]);
    if (entry !== undefined) out.push(entry);
  });
  return out;
}

/** Reads one `[[tool]]`; the handler defaults to `tool_<name>` with `-` as `_`. */
export function readTool(ctx: Context, t: Table, path: KeyPath): ToolEntry | undefined {
  const name = ctx.string(t, path, "name", { required: `add name = "my_tool"` });
  if (name !== undefined && !TOOL_NAME_RE.test(name)) {
    ctx.fail(
      [...path, "name"],
      `invalid tool name ${q(name)}`,
      `use 1 to 64 characters of a-z, A-Z, 0-9, "_" and "-" (one topic segment, what model APIs accept)`,
    );
  }
  const description = ctx.string(t, path, "description", {
    required: 'add description = "…": the model reads it to decide when to call the tool',
    nonEmpty: true,
  });
  let input_schema: JsonObject = { type: "object", properties: {} };
  if (t.input_schema !== undefined) {
    const s = ctx.table(t.input_schema, [...path, "input_schema"], "a JSON Schema table");
    const json = s ? ctx.json(s, [...path, "input_schema"]) as JsonObject | undefined : undefined;
    if (json) {
      if (json.type !== undefined && json.type !== "object") {
        ctx.fail(
          [...path, "input_schema", "type"],
          `tool arguments are a JSON object, got type = ${q(json.type)}`,
          `write type = "object"`,
        );
      }
      input_schema = json;
    }
  }
  const explicit = ctx.string(t, path, "handler");
  const handler = explicit ??
    (name !== undefined && TOOL_NAME_RE.test(name)
      ? `tool_${name.replaceAll("-", "_")}`
      : undefined);
  if (explicit !== undefined && !HANDLER_RE.test(explicit)) {
    ctx.fail([...path, "handler"], `invalid export name ${q(explicit)}`, handlerFix(explicit));
  }
  if (name === undefined || description === undefined || handler === undefined) return undefined;
  return { name, description, input_schema, handler };
}

/** Reads one `[[command]]`: exactly one of `handler` and `file`. */
export function readCommand(ctx: Context, t: Table, path: KeyPath): CommandEntry | undefined {
  const name = ctx.string(t, path, "name", { required: `add name = "deploy" (typed as /deploy)` });
  if (name !== undefined && !SLUG_RE.test(name.replace(/^\//, ""))) {
    ctx.fail(
      [...path, "name"],
      `invalid command name ${q(name)}`,
      `use 1 to 64 characters of a-z, 0-9, "_" and "-", without the slash`,
    );
  } else if (name?.startsWith("/")) {
    ctx.fail(
      [...path, "name"],
      `command name ${q(name)} starts with "/"`,
      `write name = ${q(name.slice(1))}`,
    );
  }
  const description = ctx.string(t, path, "description", {
    required: `add description = "…"`,
    nonEmpty: true,
  });
  const handler = ctx.string(t, path, "handler");
  if (handler !== undefined && !HANDLER_RE.test(handler)) {
    ctx.fail([...path, "handler"], `invalid export name ${q(handler)}`, handlerFix(handler));
  }
  const file = ctx.string(t, path, "file");
  if (file !== undefined) ctx.problem([...path, "file"], staticPathProblem(file));
  if ((handler === undefined) === (file === undefined)) {
    ctx.fail(
      path,
      handler === undefined
        ? "a command needs a handler or a file"
        : "a command has both handler and file",
      `give handler = "command_${
        (name ?? "x").replace(/[^a-z0-9_]/g, "_")
      }" (a wasm export) or file = "static/commands/${name ?? "x"}.md" (a static prompt), not both`,
    );
  }
  if (name === undefined || description === undefined) return undefined;
  return {
    name,
    description,
    ...(handler !== undefined ? { handler } : {}),
    ...(file !== undefined ? { file } : {}),
  };
}

/** Reads one `[[skill]]`. */
export function readSkill(ctx: Context, t: Table, path: KeyPath): SkillEntry | undefined {
  const name = ctx.string(t, path, "name", { required: `add name = "my-skill"` });
  if (name !== undefined && !SLUG_RE.test(name)) {
    ctx.fail(
      [...path, "name"],
      `invalid skill name ${q(name)}`,
      `use 1 to 64 characters of a-z, 0-9, "_" and "-"`,
    );
  }
  const description = ctx.string(t, path, "description", {
    required: `add description = "…": when to use the skill`,
    nonEmpty: true,
  });
  const file = ctx.string(t, path, "file", {
    required: `add file = "static/skills/${name ?? "my-skill"}.md"`,
  });
  if (file !== undefined) ctx.problem([...path, "file"], staticPathProblem(file));
  if (name === undefined || description === undefined || file === undefined) return undefined;
  return { name, description, file };
}

/** Reads `[env]`: one `NAME = { type, … }` entry per variable. */
export function readEnv(ctx: Context, value: unknown): EnvField[] {
  if (value === undefined) return [];
  const t = ctx.table(value, ["env"], "a table [env] of NAME = { type = … } entries");
  if (!t) return [];
  const out: EnvField[] = [];
  for (const [name, raw] of Object.entries(t)) {
    const path = ["env", name];
    if (!ENV_NAME_RE.test(name)) {
      ctx.fail(
        path,
        `invalid variable name ${q(name)}`,
        `use letters, digits and "_", starting with a letter or "_", e.g. "API_KEY"`,
      );
      continue;
    }
    const e = ctx.table(raw, path, `a table { type = "text", … }`);
    if (!e) continue;
    ctx.known(e, path, "env.*");
    const typeRaw = ctx.string(e, path, "type") ?? "text";
    if (!ENV_TYPES.includes(typeRaw as EnvFieldType)) {
      const near = closest(typeRaw, ENV_TYPES);
      ctx.fail(
        [...path, "type"],
        `unknown type ${q(typeRaw)}`,
        near ? `did you mean ${q(near)}?` : `use one of ${ENV_TYPES.map((x) => q(x)).join(", ")}`,
      );
      continue;
    }
    const type = typeRaw as EnvFieldType;
    const description = ctx.string(e, path, "description");
    const required = ctx.bool(e, path, "required");
    let options: string[] | undefined;
    if (e.options !== undefined) {
      if (type !== "select") {
        ctx.fail(
          [...path, "options"],
          `options belong to type "select", not ${q(type)}`,
          `remove options, or write type = "select"`,
        );
      } else options = ctx.strings(e, path, "options");
    }
    if (type === "select" && (options === undefined || options.length === 0)) {
      ctx.fail(path, "a select field has no options", `add options = ["a", "b"]`);
    }
    let dflt: string | string[] | undefined;
    if (e.default !== undefined) {
      const at = [...path, "default"];
      if (type === "secret") {
        ctx.fail(
          at,
          "a secret cannot have a default",
          "remove default: a default would ship in the manifest; the secret is asked at install",
        );
      } else if (type === "array") {
        if (Array.isArray(e.default) && e.default.every((x) => typeof x === "string")) {
          dflt = e.default as string[];
        } else ctx.fail(at, `expected a list of strings, got ${describe(e.default)}`);
      } else if (typeof e.default !== "string") {
        ctx.fail(
          at,
          `expected a string, got ${describe(e.default)}`,
          typeof e.default === "number" || typeof e.default === "boolean"
            ? `write default = ${q(String(e.default))}`
            : undefined,
        );
      } else if (
        type === "select" && options && options.length > 0 && !options.includes(e.default)
      ) {
        ctx.fail(
          at,
          `${q(e.default)} is not one of the options`,
          `use one of ${options.map((o) => q(o)).join(", ")}`,
        );
      } else dflt = e.default;
    }
    out.push({
      name,
      type,
      ...(dflt !== undefined ? { default: dflt } : {}),
      required,
      ...(description !== undefined ? { description } : {}),
      ...(options !== undefined ? { options } : {}),
    });
  }
  return out;
}

/** Reads one `[[mcp_server]]`. */
export function readMcpServer(ctx: Context, t: Table, path: KeyPath): McpServerEntry | undefined {
  const name = ctx.string(t, path, "name", { required: `add name = "my-server"` });
  if (name !== undefined && (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(name) || name.includes("__"))) {
    ctx.fail(
      [...path, "name"],
      `invalid server name ${q(name)}`,
      `use 1 to 32 characters of a-z, 0-9, "_" and "-", without "__" (tools are named <server>__<tool>)`,
    );
  }
  const command = ctx.string(t, path, "command", {
    required: `add command = "npx" (and list it in capabilities.host_process)`,
  });
  if (command !== undefined) ctx.problem([...path, "command"], programProblem(command));
  const args = ctx.strings(t, path, "args");
  const env: Record<string, string> = {};
  if (t.env !== undefined) {
    const e = ctx.table(t.env, [...path, "env"], 'a table of NAME = "value"');
    for (const [k, v] of Object.entries(e ?? {})) {
      if (!ENV_NAME_RE.test(k)) {
        ctx.fail(
          [...path, "env", k],
          `invalid variable name ${q(k)}`,
          `use letters, digits and "_"`,
        );
      } else if (typeof v !== "string") {
        ctx.fail([...path, "env", k], `expected a string, got ${describe(v)}`);
      } else env[k] = v;
    }
  }
  const hash = ctx.string(t, path, "hash");
  if (hash !== undefined) ctx.problem([...path, "hash"], hashProblem(hash));
  const description = ctx.string(t, path, "description");
  if (name === undefined || command === undefined) return undefined;
  return {
    name,
    command,
    args,
    env,
    ...(hash !== undefined ? { hash } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}

/** Reads one `[[uplink]]`. */
export function readUplink(ctx: Context, t: Table, path: KeyPath): UplinkEntry | undefined {
  const name = ctx.string(t, path, "name", { required: `add name = "telegram"` });
  if (name !== undefined && !CAPSULE_NAME_RE.test(name)) {
    ctx.fail(
      [...path, "name"],
      `invalid uplink name ${q(name)}`,
      `use 1 to 64 characters of a-z, 0-9 and "-"`,
    );
  }
  const platform = ctx.string(t, path, "platform", {
    required: `add platform = "telegram" (or "cli", "discord", …)`,
  });
  if (platform !== undefined && !SLUG_RE.test(platform)) {
    ctx.fail([...path, "platform"], `invalid platform ${q(platform)}`, `use a-z, 0-9, "_" and "-"`);
  }
  const profileRaw = ctx.string(t, path, "profile") ?? "human";
  if (!UPLINK_PROFILES.includes(profileRaw as UplinkProfile)) {
    ctx.fail(
      [...path, "profile"],
      `unknown profile ${q(profileRaw)}`,
      `use "human" (people chat through it) or "bridge" (another system)`,
    );
  }
  const description = ctx.string(t, path, "description");
  if (name === undefined || platform === undefined) return undefined;
  return {
    name,
    platform,
    profile: profileRaw as UplinkProfile,
    ...(description !== undefined ? { description } : {}),
  };
}

/** Reads one `[[cron]]`. */
export function readCron(ctx: Context, t: Table, path: KeyPath): CronEntry | undefined {
  const name = ctx.string(t, path, "name", { required: `add name = "nightly"` });
  if (name !== undefined && !SLUG_RE.test(name)) {
    ctx.fail(
      [...path, "name"],
      `invalid cron name ${q(name)}`,
      `use 1 to 64 characters of a-z, 0-9, "_" and "-"`,
    );
  }
  const schedule = ctx.string(t, path, "schedule", {
    required: `add schedule = "0 3 * * *" (UTC)`,
  });
  if (schedule !== undefined) ctx.problem([...path, "schedule"], cronProblem(schedule));
  const topic = ctx.string(t, path, "topic", { required: `add topic = "my_capsule.v1.tick"` });
  if (topic !== undefined) {
    try {
      validatePattern(topic);
      if (topic.split(".").includes("*")) {
        ctx.fail(
          [...path, "topic"],
          `${q(topic)} is a pattern`,
          "a cron job publishes one concrete topic: remove the *",
        );
      }
    } catch (err) {
      const reason = (err as { data?: { reason?: string } }).data?.reason ?? String(err);
      ctx.fail([...path, "topic"], `invalid topic ${q(topic)}: ${reason}`);
    }
  }
  const payload = t.payload === undefined ? {} : ctx.json(t.payload, [...path, "payload"]);
  if (
    name === undefined || schedule === undefined || topic === undefined || payload === undefined
  ) {
    return undefined;
  }
  return { name, schedule: schedule.trim(), topic, payload };
}
