/**
 * What the engine needs to run one MCP server, whoever declared it: a capsule's
 * `[[mcp_server]]` (with the capsule's fs capabilities) or an operator's `etc/servers.toml`
 * entry. Both become a {@link McpServerSpec}.
 *
 * Arguments and environment values may hold placeholders, replaced when the server starts:
 * `${workspace}` — the workspace root as the server sees it (inside the sandbox, the session's
 * overlay is mounted there), `${dir}` — the capsule's directory (an operator server: the
 * directory of `servers.toml`).
 *
 * @module
 */
import type { CapsuleManifest } from "../capsule/mod.ts";

/** Where a server was declared. */
export type McpServerOrigin =
  /** A capsule's `[[mcp_server]]`. */
  | { readonly kind: "capsule"; readonly capsule: string; readonly file: string }
  /** An entry of `etc/servers.toml`. */
  | { readonly kind: "operator"; readonly file: string; readonly line?: number };

/** One MCP server to run. */
export interface McpServerSpec {
  /** Its name, prefixing its tools: `<name>__<tool>`. */
  readonly name: string;
  /** The program: a name looked up on PATH (an operator entry may give an absolute path). */
  readonly command: string;
  /** Its arguments (placeholders allowed, see the module doc). */
  readonly args: readonly string[];
  /** Extra environment variables (placeholders allowed). */
  readonly env: Readonly<Record<string, string>>;
  /** `blake3:<hex>` of the file `server_hash.ts` chooses; checked before every start. */
  readonly hash?: string;
  /** One line on what it serves. */
  readonly description?: string;
  /** Who declared it. */
  readonly origin: McpServerOrigin;
  /** The directory relative script paths resolve against (`${dir}`). */
  readonly dir: string;
  /** VFS paths its tool calls may read (`*`, `workspace://…`, `home://…`, `global://…`). */
  readonly fsRead: readonly string[];
  /** VFS paths its tool calls may write (same forms). */
  readonly fsWrite: readonly string[];
  /** It may reach the network (a capsule with `net` or `http`; an operator's `network = true`). */
  readonly network: boolean;
}

/** The servers a capsule declares, with its fs capabilities; `dir` is its install directory. */
export function specsFromManifest(manifest: CapsuleManifest, dir: string): McpServerSpec[] {
  return manifest.mcp_server.map((s) => ({
    name: s.name,
    command: s.command,
    args: [...s.args],
    env: { ...s.env },
    ...(s.hash === undefined ? {} : { hash: s.hash }),
    ...(s.description === undefined ? {} : { description: s.description }),
    origin: { kind: "capsule", capsule: manifest.package.name, file: manifest.file },
    dir,
    fsRead: [...manifest.capabilities.fs_read],
    fsWrite: [...manifest.capabilities.fs_write],
    network: manifest.capabilities.http || manifest.capabilities.net.length > 0,
  }));
}

/** Replaces `${workspace}` and `${dir}` in `value`. */
export function expandPlaceholders(
  value: string,
  values: { workspace: string; dir: string },
): string {
  return value.replaceAll("${workspace}", values.workspace).replaceAll("${dir}", values.dir);
}

/** Where a spec came from, in words: `capsule "x"` or `etc/servers.toml:12`. */
export function describeOrigin(origin: McpServerOrigin): string {
  if (origin.kind === "capsule") return `capsule "${origin.capsule}"`;
  return origin.line === undefined ? origin.file : `${origin.file}:${origin.line}`;
}
