/**
 * The typed `Capsule.toml`: what {@link parseManifest} returns. Field names are the TOML keys,
 * so a value is found under the same name here, in a manifest and in `docs/capsule_manifest.md`;
 * arrays of tables keep their table name (`tool`, `mcp_server`), and `[imports]`/`[exports]`/
 * `[publish]`/`[subscribe]`/`[env]` become lists in file order.
 *
 * ```ts
 * import { parseManifest } from "./manifest_parser.ts";
 *
 * const m = parseManifest(
 *   `[package]
 * name = "hello"
 * version = "0.1.0"
 *
 * [wasm]
 *
 * [[tool]]
 * name = "greet"
 * description = "Greets someone"
 * `,
 *   { file: "hello/Capsule.toml" },
 * );
 * if (m.tool[0].handler !== "tool_greet") throw new Error("default handler");
 * if (m.wasm?.file !== "hello.wasm") throw new Error("default wasm file");
 * ```
 *
 * @module
 */
import type { JsonValue } from "../events/mod.ts";

/** A JSON object (a JSON Schema, a payload). */
export type JsonObject = { readonly [key: string]: JsonValue };

/** Capsule names: `[a-z0-9][a-z0-9-]{0,63}` (a directory name, a KV namespace part). */
export const CAPSULE_NAME_RE: RegExp = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Tool names: one topic segment that OpenAI and Anthropic accept. */
export const TOOL_NAME_RE: RegExp = /^[a-zA-Z0-9_-]{1,64}$/;
/** Typed prefixes of `[imports]`/`[exports]` names whose body matches with `*` segments. */
export const TYPED_PREFIXES: readonly string[] = ["topic", "tool", "llm", "uplink"];
/** Identity levels, weakest first: each implies the ones before it. */
export const IDENTITY_LEVELS: readonly IdentityLevel[] = ["resolve", "link", "admin"];
/** Kinds of `[env]` fields. */
export const ENV_TYPES: readonly EnvFieldType[] = ["text", "secret", "select", "array"];
/** Interaction profiles of an `[[uplink]]`. */
export const UPLINK_PROFILES: readonly UplinkProfile[] = ["human", "bridge"];
/** The interceptor priority a `[subscribe]` handler gets when none is given (lower runs first). */
export const DEFAULT_HANDLER_PRIORITY = 100;

/** `[capabilities] identity`: `admin` > `link` > `resolve`. */
export type IdentityLevel = "resolve" | "link" | "admin";
/** `[env] <NAME>.type`. */
export type EnvFieldType = "text" | "secret" | "select" | "array";
/** `[[uplink]] profile`: a human frontend (chat app, terminal) or a bridge to another system. */
export type UplinkProfile = "human" | "bridge";

/** `[package]`. */
export interface PackageSection {
  /** The capsule's name: `[a-z0-9][a-z0-9-]{0,63}`. */
  readonly name: string;
  /** Its semantic version `MAJOR.MINOR.PATCH`. */
  readonly version: string;
  /** One line on what it does. */
  readonly description?: string;
  /** Authors, e.g. `"Ada <ada@example.com>"`. */
  readonly authors: readonly string[];
  /** An SPDX license expression. */
  readonly license?: string;
  /** Source repository URL. */
  readonly repository?: string;
  /** Home page URL. */
  readonly homepage?: string;
  /** Search keywords. */
  readonly keywords: readonly string[];
  /** Version range of Astrid the capsule runs on, e.g. `">=0.1"`. */
  readonly astrid_version?: string;
}

/** `[wasm]`: the WebAssembly engine. */
export interface WasmSection {
  /** The module, relative to the capsule directory; default `<name>.wasm`. */
  readonly file: string;
  /** `blake3:<hex>` of the module when the author pins it; install refuses another. */
  readonly hash?: string;
}

/** `[capabilities]`: everything not declared is denied (fail-closed). */
export interface CapabilitiesSection {
  /** VFS paths the capsule may read: `workspace://…`, `home://…`, `global://…`, `"*"`. */
  readonly fs_read: readonly string[];
  /** VFS paths the capsule may write (same forms as `fs_read`). */
  readonly fs_write: readonly string[];
  /** `host:port` the HTTP calls may reach; `*.example.com:443`, `api.x.com:*` allowed. */
  readonly net: readonly string[];
  /** Unix socket names the capsule may bind: `unix:<name>` or `unix:*`. */
  readonly net_bind: readonly string[];
  /** Program names the capsule may spawn (and `[[mcp_server]]` commands). */
  readonly host_process: readonly string[];
  /** Spawned processes may outlive the invocation (needs `host_process`). */
  readonly allow_persistent: boolean;
  /** The capsule may use its per-principal KV namespace. */
  readonly kv: boolean;
  /** Identity operations allowed, or undefined for none. */
  readonly identity?: IdentityLevel;
  /** The capsule may make HTTP requests (to hosts in `net`). */
  readonly http: boolean;
  /** The capsule is an uplink: loads first, must signal ready, may inject user turns. */
  readonly uplink: boolean;
  /** The capsule may ask a human for approval. */
  readonly approval: boolean;
  /** Hook output from this capsule may change the system prompt. */
  readonly allow_prompt_injection: boolean;
}

/** One `[imports]` entry: an interface this capsule needs. */
export interface ImportEntry {
  /** `namespace:name`, e.g. `astrid:llm` or `topic:llm.v1.stream.*`. */
  readonly id: string;
  /** The namespace (before the colon). */
  readonly namespace: string;
  /** The interface name (after the colon). */
  readonly name: string;
  /** The version range required, as written (`^1.0`). */
  readonly version: string;
  /** When true, a missing provider does not block the capsule. */
  readonly optional: boolean;
}

/** One `[exports]` entry: an interface this capsule provides. */
export interface ExportEntry {
  /** `namespace:name`. */
  readonly id: string;
  /** The namespace (before the colon). */
  readonly namespace: string;
  /** The interface name (after the colon). */
  readonly name: string;
  /** The exact version provided. */
  readonly version: string;
}

/** One `[publish]` entry: a topic pattern the capsule may publish (its ACL). */
export interface PublishEntry {
  /** The topic or pattern (a trailing `*` covers a subtree). */
  readonly topic: string;
  /** A named payload type (`@scope/pkg/iface/record`, a local name, or `"opaque"`). */
  readonly wit?: string;
  /** A JSON Schema of the payload. */
  readonly schema?: JsonObject;
  /** The last segment names a recipient (documentation hint for tooling). */
  readonly fanout: boolean;
  /** One line on what the topic carries. */
  readonly description?: string;
}

/** One `[subscribe]` entry: an ACL entry, and an interceptor binding when it has a handler. */
export interface SubscribeEntry {
  /** The topic or pattern. */
  readonly topic: string;
  /** A named payload type. */
  readonly wit?: string;
  /** A JSON Schema of the payload. */
  readonly schema?: JsonObject;
  /** The wasm export invoked for matching messages; absent for an ACL-only entry. */
  readonly handler?: string;
  /** Interceptor priority, lower first; set (default 100) exactly when `handler` is, unless detached. */
  readonly priority?: number;
  /**
   * True: a failing invocation (trap, timeout, bad reply) denies the message (fails closed);
   * false: it is skipped and the message goes on (fails open). Set only when the manifest
   * says so, and only with `handler`; absent, the bus decides (a guard below priority 100).
   */
  readonly guard?: boolean;
  /**
   * True: the handler is not an interceptor; the publisher does not wait for it. The kernel
   * takes each matching message once it is delivered and invokes the handler in the background
   * for the message's principal (its reply is ignored). Only with `handler`, never with
   * `priority` or `guard`; absent otherwise.
   */
  readonly detach?: true;
  /** One line on what the capsule does with it. */
  readonly description?: string;
}

/** One `[[tool]]`: a tool answered on `tool.v1.execute.<name>`. */
export interface ToolEntry {
  /** `^[a-zA-Z0-9_-]{1,64}$`. */
  readonly name: string;
  /** What the model is told the tool does. */
  readonly description: string;
  /** JSON Schema of the arguments (default `{"type":"object","properties":{}}`). */
  readonly input_schema: JsonObject;
  /** The wasm export invoked (default `tool_<name>`). */
  readonly handler: string;
}

/** One `[[command]]`: a slash command, run by a wasm export or given as a static file. */
export interface CommandEntry {
  /** The command, without the slash. */
  readonly name: string;
  /** One line shown in help. */
  readonly description: string;
  /** The wasm export invoked; exclusive with `file`. */
  readonly handler?: string;
  /** A static prompt file under `static/`; exclusive with `handler`. */
  readonly file?: string;
}

/** One `[[skill]]`: a skill file the capsule contributes. */
export interface SkillEntry {
  /** The skill's name. */
  readonly name: string;
  /** When to use it. */
  readonly description: string;
  /** The file, under `static/`. */
  readonly file: string;
}

/** One `[env]` field: configuration asked at install. */
export interface EnvField {
  /** The variable name (the `[env]` key). */
  readonly name: string;
  /** Its kind. */
  readonly type: EnvFieldType;
  /** Default value: a string, or a list of strings for `array`. */
  readonly default?: string | readonly string[];
  /** Install fails without a value. */
  readonly required: boolean;
  /** The prompt shown at install. */
  readonly description?: string;
  /** The choices of a `select`. */
  readonly options?: readonly string[];
}

/** One `[[mcp_server]]`: a native MCP server over stdio. */
export interface McpServerEntry {
  /** The server's name (prefixes its tools: `<name>__<tool>`). */
  readonly name: string;
  /** The program; must be listed in `capabilities.host_process`. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Extra environment variables. */
  readonly env: Readonly<Record<string, string>>;
  /** `blake3:<hex>` of the program binary, checked before every start when set. */
  readonly hash?: string;
  /** One line on what it serves. */
  readonly description?: string;
}

/** One `[[uplink]]`: a frontend this capsule bridges to the bus. */
export interface UplinkEntry {
  /** The uplink's name. */
  readonly name: string;
  /** The outside platform, e.g. `telegram`, `cli`. */
  readonly platform: string;
  /** Who is on the other side. */
  readonly profile: UplinkProfile;
  /** One line on it. */
  readonly description?: string;
}

/** `[static]`: content loaded without a VM. */
export interface StaticSection {
  /** Context files (under `static/`) added to the model's context. */
  readonly context_files: readonly string[];
}

/** One `[[cron]]`: a topic published on a schedule (UTC). */
export interface CronEntry {
  /** Unique name within the capsule. */
  readonly name: string;
  /** Five-field cron expression or `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly`. */
  readonly schedule: string;
  /** The topic published; a `[publish]` key must cover it. */
  readonly topic: string;
  /** The JSON payload published (default `{}`). */
  readonly payload: JsonValue;
}

/** A parsed, validated `Capsule.toml`. */
export interface CapsuleManifest {
  /** The file it was read from (as given to the parser). */
  readonly file: string;
  /** `[package]`. */
  readonly package: PackageSection;
  /** `[wasm]`, when the capsule has a WebAssembly module. */
  readonly wasm?: WasmSection;
  /** `[capabilities]`, defaults filled (all denied). */
  readonly capabilities: CapabilitiesSection;
  /** `[imports]`, sorted by id. */
  readonly imports: readonly ImportEntry[];
  /** `[exports]`, sorted by id. */
  readonly exports: readonly ExportEntry[];
  /** `[publish]`, in file order. */
  readonly publish: readonly PublishEntry[];
  /** `[subscribe]`, in file order. */
  readonly subscribe: readonly SubscribeEntry[];
  /** `[[tool]]`. */
  readonly tool: readonly ToolEntry[];
  /** `[[command]]`. */
  readonly command: readonly CommandEntry[];
  /** `[[skill]]`. */
  readonly skill: readonly SkillEntry[];
  /** `[env]`, in file order. */
  readonly env: readonly EnvField[];
  /** `[[mcp_server]]`. */
  readonly mcp_server: readonly McpServerEntry[];
  /** `[[uplink]]`. */
  readonly uplink: readonly UplinkEntry[];
  /** `[static]`. */
  readonly static: StaticSection;
  /** `[[cron]]`. */
  readonly cron: readonly CronEntry[];
}

/** True when a capsule holding `held` may perform an identity operation needing `needed`. */
export function identityAllows(held: IdentityLevel | undefined, needed: IdentityLevel): boolean {
  if (held === undefined) return false;
  return IDENTITY_LEVELS.indexOf(held) >= IDENTITY_LEVELS.indexOf(needed);
}

/** True when the manifest declares an uplink capsule (loaded first, must signal ready). */
export function isUplinkCapsule(manifest: CapsuleManifest): boolean {
  return manifest.capabilities.uplink;
}
