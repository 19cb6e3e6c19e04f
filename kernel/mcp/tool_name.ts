/**
 * Bus names of MCP tools (DESIGN §5): a server's tool is the one topic segment
 * `<server>__<tool>`, matching `^[a-zA-Z0-9_-]{1,64}$` like every tool name. A tool name with
 * other characters has them replaced by `_`; when that changed the name, or the result is
 * longer than 64 characters, the name is cut to 55 characters and suffixed with `_` and the
 * first 8 hex digits of the BLAKE3 of `<server>\0<tool>`, so two tools never share a name.
 *
 * @example
 * ```ts
 * import { mcpToolName } from "./tool_name.ts";
 * if (mcpToolName("fs", "read_file") !== "fs__read_file") throw new Error();
 * const long = mcpToolName("github", "x".repeat(80));
 * if (long.length !== 64 || !long.startsWith("github__xxx")) throw new Error();
 * ```
 *
 * @module
 */
import { blake3Hex } from "../crypto/mod.ts";

/** The longest tool name (what OpenAI and Anthropic accept). */
export const MAX_TOOL_NAME = 64;
/** The separator between server and tool in a bus tool name. */
export const TOOL_SEPARATOR = "__";
/** A valid bus tool name. */
export const BUS_TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

const HASH_DIGITS = 8;

/** The bus tool name of `tool` served by `server` (see the module doc). */
export function mcpToolName(server: string, tool: string): string {
  const clean = tool === "" ? "_" : tool.replace(/[^a-zA-Z0-9_-]/g, "_");
  const full = `${server}${TOOL_SEPARATOR}${clean}`;
  if (clean === tool && full.length <= MAX_TOOL_NAME) return full;
  const suffix = "_" + blake3Hex(`${server}\0${tool}`).slice(0, HASH_DIGITS);
  return full.slice(0, MAX_TOOL_NAME - suffix.length) + suffix;
}

/**
 * The tool id the security pipeline and capability tokens see: `<server>/<rest>`, where
 * `<rest>` is the bus name after `<server>__` (`tool:github/create_issue`,
 * `docs/capabilities.md`).
 */
export function securityToolId(server: string, busName: string): string {
  return `${server}/${busName.slice(server.length + TOOL_SEPARATOR.length)}`;
}
