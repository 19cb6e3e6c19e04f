/**
 * `etc/servers.toml`: MCP servers the operator runs for every principal, and the engine's
 * settings. Read once when the engine starts and again on reload.
 *
 * ```toml
 * [settings]
 * allow_unsandboxed = false   # run servers without a namespace sandbox (warned every start)
 * idle_timeout_secs = 300     # stop a server unused this long (0: never)
 * call_timeout_secs = 300     # a tool call's limit; progress notifications extend it
 *
 * [servers.filesystem]
 * command = "node"            # a program on PATH, or an absolute path
 * args = ["/opt/mcp/server-filesystem/dist/index.js", "${workspace}"]
 * hash = "blake3:…"           # of the script (interpreters) or the program; see server_hash.ts
 * env = { NODE_ENV = "production" }
 * description = "Files of the workspace"
 * fs_read = ["*"]             # what its tool calls may name, as in [capabilities]
 * fs_write = ["*"]
 * network = false             # reach the network from the sandbox (default: loopback only)
 * ```
 *
 * Every problem is reported with file, line, field and a fix; all of them at once.
 *
 * @module
 */
import { parse, TomlError } from "smol-toml";
import { dirname } from "node:path";
import { McpCode, McpError } from "./errors.ts";
import type { McpServerSpec } from "./server_spec.ts";

/** The engine's settings (`[settings]` of `servers.toml`). */
export interface McpSettings {
  /** Run servers without a namespace sandbox when none can be made (default false). */
  readonly allowUnsandboxed: boolean;
  /** Stop a server after this many seconds without a call; 0 never (default 300). */
  readonly idleTimeoutSecs: number;
  /** A tool call's time limit in seconds; progress resets it (default 300). */
  readonly callTimeoutSecs: number;
}

/** The defaults of {@link McpSettings}. */
export const DEFAULT_MCP_SETTINGS: McpSettings = Object.freeze({
  allowUnsandboxed: false,
  idleTimeoutSecs: 300,
  callTimeoutSecs: 300,
});

/** What `servers.toml` holds. */
export interface ServersFile {
  /** The settings, defaults filled. */
  readonly settings: McpSettings;
  /** The operator's servers, in file order. */
  readonly servers: readonly McpServerSpec[];
}

/** A server name: as in `[[mcp_server]]`. */
export const SERVER_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const HASH_RE = /^blake3:[0-9a-f]{64}$/;
const PROGRAM_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const VFS_RE = /^(workspace|home|global):\/\/(.*)$/;
const SERVER_KEYS = [
  "command",
  "args",
  "env",
  "hash",
  "description",
  "fs_read",
  "fs_write",
  "network",
];
const SETTING_KEYS = ["allow_unsandboxed", "idle_timeout_secs", "call_timeout_secs"];
const MAX_SECS = 86_400;

type Table = Record<string, unknown>;

interface Issue {
  readonly field: string;
  readonly message: string;
}

/** Reads `file`; a missing file is no servers and the default settings. */
export async function loadServersToml(file: string): Promise<ServersFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { settings: DEFAULT_MCP_SETTINGS, servers: [] };
    }
    throw err;
  }
  return parseServersToml(text, file);
}

/** Parses the text of `servers.toml` read from `file`; throws `MCP_CONFIG_INVALID`. */
export function parseServersToml(text: string, file: string): ServersFile {
  let doc: Table;
  try {
    doc = parse(text) as Table;
  } catch (err) {
    const line = err instanceof TomlError ? err.line : undefined;
    const what = err instanceof TomlError
      ? err.message.split("\n")[0]
      : String((err as Error)?.message ?? err);
    throw new McpError(
      McpCode.MCP_CONFIG_INVALID,
      `Cannot read ${file}${line === undefined ? "" : `:${line}`}: not valid TOML: ${what}`,
      { data: { file, ...(line === undefined ? {} : { line }) } },
    );
  }
  const lines = locateKeys(text);
  const issues: Issue[] = [];
  const fail = (field: string, message: string) => issues.push({ field, message });
  for (const key of Object.keys(doc)) {
    if (key !== "settings" && key !== "servers") {
      fail(key, `unknown table or key "${key}": use [settings] and [servers.<name>]`);
    }
  }
  const settings = readSettings(doc.settings, fail);
  const servers: McpServerSpec[] = [];
  if (doc.servers !== undefined) {
    if (!isTable(doc.servers)) fail("servers", "expected tables [servers.<name>]");
    else {
      for (const [name, value] of Object.entries(doc.servers)) {
        const spec = readServer(name, value, file, lines, fail);
        if (spec !== undefined) servers.push(spec);
      }
    }
  }
  if (issues.length > 0) {
    const where = (i: Issue) => {
      const line = lines.get(i.field) ?? lines.get(i.field.split(".").slice(0, 2).join("."));
      return `${file}${line === undefined ? "" : `:${line}`}: ${i.field}: ${i.message}`;
    };
    const first = issues[0];
    const firstLine = lines.get(first.field);
    throw new McpError(
      McpCode.MCP_CONFIG_INVALID,
      issues.length === 1
        ? `Invalid ${where(first)}`
        : `Invalid ${file}: ${issues.length} problems:\n${issues.map(where).join("\n")}`,
      {
        data: { file, field: first.field, ...(firstLine === undefined ? {} : { line: firstLine }) },
      },
    );
  }
  return { settings, servers };
}

function readSettings(value: unknown, fail: (f: string, m: string) => void): McpSettings {
  if (value === undefined) return DEFAULT_MCP_SETTINGS;
  if (!isTable(value)) {
    fail("settings", "expected a table [settings]");
    return DEFAULT_MCP_SETTINGS;
  }
  for (const key of Object.keys(value)) {
    if (!SETTING_KEYS.includes(key)) {
      fail(`settings.${key}`, `unknown setting "${key}": use ${SETTING_KEYS.join(", ")}`);
    }
  }
  const out = { ...DEFAULT_MCP_SETTINGS };
  if (value.allow_unsandboxed !== undefined) {
    if (typeof value.allow_unsandboxed !== "boolean") {
      fail("settings.allow_unsandboxed", "expected true or false");
    } else out.allowUnsandboxed = value.allow_unsandboxed;
  }
  for (
    const [key, prop] of [["idle_timeout_secs", "idleTimeoutSecs"], [
      "call_timeout_secs",
      "callTimeoutSecs",
    ]] as const
  ) {
    const v = value[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_SECS) {
      fail(`settings.${key}`, `expected whole seconds from 0 to ${MAX_SECS}, got ${show(v)}`);
    } else if (key === "call_timeout_secs" && v === 0) {
      fail(`settings.${key}`, "expected at least 1 second");
    } else out[prop] = v;
  }
  return out;
}

function readServer(
  name: string,
  value: unknown,
  file: string,
  lines: Map<string, number>,
  fail: (f: string, m: string) => void,
): McpServerSpec | undefined {
  const at = `servers.${name}`;
  let ok = true;
  const bad = (field: string, message: string) => {
    ok = false;
    fail(field, message);
  };
  if (!SERVER_NAME_RE.test(name) || name.includes("__")) {
    bad(
      at,
      `invalid server name "${name}": use 1 to 32 characters of a-z, 0-9, "_" and "-", without "__" (tools are named <server>__<tool>)`,
    );
  }
  if (!isTable(value)) {
    bad(at, "expected a table");
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!SERVER_KEYS.includes(key)) {
      bad(`${at}.${key}`, `unknown key "${key}": use ${SERVER_KEYS.join(", ")}`);
    }
  }
  const command = value.command;
  if (typeof command !== "string") {
    bad(`${at}.command`, `add command = "node" (a program on PATH, or an absolute path)`);
  } else if (!PROGRAM_RE.test(command) && !(command.startsWith("/") && !command.includes("\0"))) {
    bad(`${at}.command`, `"${command}" is not a program name or an absolute path`);
  }
  const args = strings(value.args, `${at}.args`, bad) ?? [];
  const env: Record<string, string> = {};
  if (value.env !== undefined) {
    if (!isTable(value.env)) bad(`${at}.env`, 'expected a table of NAME = "value"');
    else {
      for (const [k, v] of Object.entries(value.env)) {
        if (!ENV_NAME_RE.test(k)) bad(`${at}.env.${k}`, `invalid variable name "${k}"`);
        else if (typeof v !== "string") bad(`${at}.env.${k}`, `expected a string, got ${show(v)}`);
        else env[k] = v;
      }
    }
  }
  const hash = value.hash;
  if (hash !== undefined && (typeof hash !== "string" || !HASH_RE.test(hash))) {
    bad(
      `${at}.hash`,
      `${show(hash)} is not a BLAKE3 content address: write "blake3:" and 64 lowercase hex digits`,
    );
  }
  const description = value.description;
  if (description !== undefined && typeof description !== "string") {
    bad(`${at}.description`, "expected a string");
  }
  const network = value.network ?? false;
  if (typeof network !== "boolean") bad(`${at}.network`, "expected true or false");
  const fsRead = vfsList(value.fs_read, `${at}.fs_read`, bad);
  const fsWrite = vfsList(value.fs_write, `${at}.fs_write`, bad);
  if (!ok || typeof command !== "string") return undefined;
  const line = lines.get(at);
  return {
    name,
    command,
    args,
    env,
    ...(typeof hash === "string" ? { hash } : {}),
    ...(typeof description === "string" ? { description } : {}),
    origin: { kind: "operator", file, ...(line === undefined ? {} : { line }) },
    dir: dirname(file),
    fsRead,
    fsWrite,
    network: network === true,
  };
}

function strings(
  value: unknown,
  field: string,
  bad: (f: string, m: string) => void,
): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    bad(field, `expected a list of strings, got ${show(value)}`);
    return undefined;
  }
  return value as string[];
}

function vfsList(value: unknown, field: string, bad: (f: string, m: string) => void): string[] {
  const list = strings(value, field, bad) ?? [];
  for (const v of list) {
    if (v === "*") continue;
    const m = VFS_RE.exec(v);
    if (m === null) {
      bad(field, `"${v}" is not a VFS path: use "workspace://…", "home://…", "global://…" or "*"`);
    } else if (m[2].split("/").includes("..") || /[\\\0]/.test(m[2])) {
      bad(field, `"${v}" contains "..", a backslash or NUL: name the directory itself`);
    }
  }
  return list;
}

function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

function show(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 60 ? s.slice(0, 60) + "…" : s;
}

/** Maps `settings`, `servers.<name>` and `servers.<name>.<key>` to 1-based lines. */
function locateKeys(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let table = "";
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const header = /^\[\s*([^\[\]]+?)\s*\]/.exec(line);
    if (header !== null && !line.startsWith("[[")) {
      table = header[1].split(".").map((s) => s.trim().replace(/^"(.*)"$/, "$1")).join(".");
      if (!out.has(table)) out.set(table, i + 1);
      continue;
    }
    const key = /^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+)\s*=/.exec(line);
    if (key !== null) {
      const k = key[1].replace(/^"(.*)"$/, "$1");
      const full = table === "" ? k : `${table}.${k}`;
      if (!out.has(full)) out.set(full, i + 1);
    }
  }
  return out;
}
